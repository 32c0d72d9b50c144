"""Checks of what callers pass to LST's models: each names the argument, what is wrong, and what to do.

They run once at the top of a forward pass, before any layer, so a bad id is reported as such rather than as
torch's "index out of range in self" from deep inside an embedding. The range check costs one host
synchronisation (`aminmax`); under `torch.compile` / `torch.export` the checks are skipped, since a traced
graph cannot branch on data (check inputs eagerly once before compiling).
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100


def _tracing() -> bool:
    return torch.compiler.is_compiling()


def check_token_ids(input_ids: torch.Tensor, vocab_size: int, name: str = "input_ids") -> None:
    """A non-empty `(batch, tokens)` integer tensor of ids in `[0, vocab_size)`."""
    if not isinstance(input_ids, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor of shape (batch, tokens), got {type(input_ids).__name__}: "
                        "use the tokenizer with return_tensors='pt'.")
    if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer ids, got dtype {input_ids.dtype}: convert with .long().")
    if input_ids.ndim != 2:
        hint = " (a single sequence: add the batch dimension with ids[None])" if input_ids.ndim == 1 else ""
        raise ValueError(f"{name} must have shape (batch, tokens), got {tuple(input_ids.shape)}{hint}.")
    if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(input_ids.shape)}): every row needs at least one token "
                         "(a prompt of only BOS is fine).")
    if _tracing():
        return
    low, high = (int(v) for v in torch.aminmax(input_ids))
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        where = tuple(int(i) for i in ((input_ids == bad).nonzero()[0]))
        raise ValueError(f"{name} holds id {bad} at (row, position) {where}, outside the model's vocabulary "
                         f"[0, {vocab_size}). Ids must come from the tokenizer the model was built for; a tokenizer "
                         "with more ids needs a config from LSTConfig.from_tokenizer(tokenizer) or "
                         "model.resize_token_embeddings(len(tokenizer)).")


def check_same_shape(tensor: torch.Tensor | None, name: str, input_ids: torch.Tensor, expected: tuple) -> None:
    """`tensor` (when given) has `expected` shape, the one `input_ids` implies."""
    if tensor is None:
        return
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(tensor).__name__}.")
    if tuple(tensor.shape) != tuple(expected):
        raise ValueError(f"{name} has shape {tuple(tensor.shape)} but input_ids {tuple(input_ids.shape)} needs "
                         f"{tuple(expected)}: one value per token (with a cache, per token so far).")


def check_causal_lm_labels(labels: torch.Tensor, input_ids: torch.Tensor, vocab_size: int,
                           num_items_in_batch=None) -> None:
    """Labels like `input_ids` (shifted inside the loss), each an id or -100; at least one target counts."""
    check_same_shape(labels, "labels", input_ids, tuple(input_ids.shape))
    if labels.dtype.is_floating_point:
        raise TypeError(f"labels must hold integer ids (or -100 to ignore a position), got dtype {labels.dtype}.")
    if _tracing():
        return
    targets = labels[:, 1:]
    counted = targets != IGNORE_INDEX
    bad = targets[counted & ((targets < 0) | (targets >= vocab_size))]
    if bad.numel():
        raise ValueError(f"labels hold {int(bad[0])}, which is neither an id in [0, {vocab_size}) nor -100 "
                         "(ignored).")
    if num_items_in_batch is None and not bool(counted.any()):
        raise ValueError("Every label after the first position is -100, so the mean loss has no target and would "
                         "be nan. Label at least one token, drop the batch, or pass num_items_in_batch (the loss is "
                         "then a sum over targets divided by it, 0 for this batch).")


def check_class_labels(labels: torch.Tensor, batch_size: int, num_labels: int, problem_type: str | None) -> None:
    """One label per row: a class index in `[0, num_labels)` (single-label), or floats (regression/multi-label)."""
    if problem_type in ("regression", "multi_label_classification") or labels.dtype.is_floating_point:
        if labels.shape[0] != batch_size:
            raise ValueError(f"labels have {labels.shape[0]} rows for a batch of {batch_size}.")
        return
    if labels.ndim != 1 or labels.shape[0] != batch_size:
        raise ValueError(f"labels must be one class index per row, shape ({batch_size},); got {tuple(labels.shape)}.")
    if _tracing():
        return
    bad = labels[(labels < 0) | (labels >= num_labels)]
    if bad.numel():
        raise ValueError(f"labels hold {int(bad[0])}, outside the {num_labels} classes [0, {num_labels}): set "
                         "num_labels (and id2label) to the task's classes when loading the model.")
