"""What one pretraining step computes and logs: patch starts from the config, next-token losses, the
optimizer, the window of losses between two log lines, and the held-out loss at the end."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lst_speech.modeling_lst import LSTConfig
from lst_speech.modeling_lst.patching import config_patch_starts, patch_starts
from lst_speech.training.arguments import PretrainingArguments
from lst_speech.training.data.collator import PackedCollator


def optimizer_for(model, args: PretrainingArguments) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms, biases or 1-D parameters)."""
    decayed = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    plain = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decayed, "weight_decay": args.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2))


def token_losses(model, batch: dict, starts: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token losses (batch, tokens - 1) and which targets count (not padding)."""
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if starts is not None:
        inputs["patch_starts"] = starts
    logits = model(**inputs, use_cache=False).logits[:, :-1].float()
    targets = batch["input_ids"][:, 1:]
    losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return losses.view_as(targets), batch["attention_mask"][:, 1:].bool()


def patching_for(batch: dict, config: LSTConfig, seed: int, step: int, rank: int, micro: int) -> torch.Tensor:
    """This micro-batch's patch starts under the config's patching; random draws are seeded by (seed, step,
    rank, micro)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step * 1009 + rank * 31 + micro)
    return config_patch_starts(config, batch["modality_mask"].cpu(), batch["aligned_boundaries"].cpu(), step,
                               generator).to(batch["input_ids"].device)


class LossWindow:
    """Sums of token losses by kind (all, text, speech) between two log lines, reduced over processes."""

    KINDS = ("all", "text", "speech")

    def __init__(self, device):
        self.device = device
        self.reset()

    def reset(self):
        self.sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        self.counts = torch.zeros(3, dtype=torch.float64, device=self.device)
        self.tokens = self.positions = self.flops = 0.0
        self.started = time.perf_counter()

    def add(self, losses, valid, targets, speech_targets, text_range):
        text = valid & (targets >= text_range[0]) & (targets < text_range[1])
        speech = valid & speech_targets
        for index, mask in enumerate((valid, text, speech)):
            self.sums[index] += losses.detach()[mask].double().sum()
            self.counts[index] += mask.sum()

    def means(self, accelerator) -> dict[str, float]:
        sums, counts = accelerator.reduce(self.sums, "sum"), accelerator.reduce(self.counts, "sum")
        return {f"loss_{kind}" if kind != "all" else "loss": s / c if c else float("nan")
                for kind, s, c in zip(self.KINDS, sums.tolist(), counts.tolist())}


def evaluate_loss(model, dataset, tokenizer, accelerator, args, lst_config) -> dict[str, float]:
    """Held-out next-token loss, overall and by target modality, with the patching used at inference."""
    model.eval()
    window = LossWindow(accelerator.device)
    loader = accelerator.prepare_data_loader(DataLoader(dataset, batch_size=args.per_device_batch_size,
                                                        collate_fn=PackedCollator(tokenizer.pad_token_id)))
    text_range = tokenizer.vocabulary_layout()["text_token_range"]
    with torch.no_grad():
        for batch in loader:
            starts = None
            if lst_config is not None:
                starts = patch_starts("static", batch["modality_mask"].cpu(), lst_config.patch_size,
                                      lst_config.max_patch_length).to(batch["input_ids"].device)
            losses, valid = token_losses(model, batch, starts)
            window.add(losses, valid, batch["input_ids"][:, 1:], batch["modality_mask"][:, 1:], text_range)
    model.train()
    return window.means(accelerator)
