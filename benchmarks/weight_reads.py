"""The fastest this machine's matmul kernels can read the weights one cached decoding step of batch 1 reads.

At batch 1 every linear layer is a matrix-vector product bound by reading its weight. Timing each weight shape
through `F.linear` (as `nn.Linear` calls it) over a ring of distinct weights larger than the CPU's caches, as a
real model's layers are, and summing over `decoding_weight_reads` gives a model's time per token with every
other op (norms, rotary, masks, cache appends, the generate loop) taken as free: the ceiling of a speed ratio
between two models on this machine.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from lst_speech.modeling_lst.accounting import decoding_weight_reads

RING_BYTES = 512 * 2**20  # larger than any CPU cache here: each timed read comes from memory


def seconds_per_read(shape: tuple[int, int], repeats: int = 3) -> float:
    """Best time of one batch-1 float32 `F.linear` against a weight of `shape`, each call a different weight."""
    out_features, in_features = shape
    ring = [torch.randn(shape) for _ in range(max(2, math.ceil(RING_BYTES / (4 * out_features * in_features))))]
    vector = torch.randn(1, in_features)
    best = math.inf
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            for weight in ring:
                F.linear(vector, weight)
            best = min(best, (time.perf_counter() - start) / len(ring))
    return best


def matmul_ceiling(model: torch.nn.Module) -> tuple[float, float]:
    """(parameters read per token, seconds per token spent reading them at this machine's kernel speeds)."""
    reads = decoding_weight_reads(model)
    speed = {shape: seconds_per_read(shape) for shape in {shape for _, shape, _ in reads}}
    parameters = sum(math.prod(shape) * per_token for _, shape, per_token in reads)
    return parameters, sum(speed[shape] * per_token for _, shape, per_token in reads)
