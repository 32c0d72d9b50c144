"""Model FLOPs of a training batch, and the peak they are compared with (MFU).

Training FLOPs are 3x the forward matmul FLOPs of `lst_speech.modeling_lst.accounting` (forward + backward), counted
per sequence from its real tokens and, for LST, its actual patch lengths. The peak is the device's
datasheet figure when given (`--peak_tflops`), otherwise a measured dense-matmul rate in the training dtype:
on CPUs there is no datasheet figure to trust, so MFU there means "of what this machine's matmul reaches".
"""

from __future__ import annotations

import time

import torch

from lst_speech.modeling_lst.accounting import SequenceShape, llama_flops, lst_flops
from lst_speech.modeling_lst.patching import patch_lengths_from_starts


def training_flops(model_type: str, config, attention_mask: torch.Tensor, starts: torch.Tensor | None) -> float:
    """3 x forward FLOPs summed over the batch's sequences (padding excluded)."""
    lengths = attention_mask.sum(dim=1).tolist()
    total = 0.0
    if model_type == "llama":
        for length in lengths:
            total += sum(llama_flops(config, int(length)).values())
        return 3.0 * total
    for row, length in enumerate(lengths):
        patch_lengths = patch_lengths_from_starts(starts[row : row + 1, : int(length)].cpu())[0]
        total += sum(lst_flops(config, SequenceShape(int(length), tuple(patch_lengths))).values())
    return 3.0 * total


def measured_peak_flops(device: torch.device, dtype: torch.dtype = torch.float32, size: int = 2048) -> float:
    """FLOP/s of a large square matmul on `device` (best of 5)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(6):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best
