"""Control of the output modality in generation, for LST and for the Llama baseline alike.

`ModalityLogitsProcessor` keeps only the ids of one modality (text pieces, or speech tokens; or both and the
markers for "any"), plus EOS, as Spirit LM does with banned ids.
`generate_in_modality` prompts in one modality and continues in another (S->T, T->S, S->S, T->T), and
returns what was generated as typed segments (text strings and unit arrays).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList

MODALITIES = ("text", "speech", "any")


class ModalityLogitsProcessor(LogitsProcessor):
    """Sets the scores of every id outside `allowed_ids` to -inf."""

    def __init__(self, allowed: torch.Tensor):
        if allowed.dtype != torch.bool or allowed.ndim != 1 or not allowed.any():
            raise ValueError("`allowed` must be a non-empty 1-D boolean mask over the vocabulary.")
        self.allowed = allowed

    @classmethod
    def from_tokenizer(cls, tokenizer, modality: str, allow_eos: bool = True) -> ModalityLogitsProcessor:
        """Only `modality`'s ids ("text", "speech" or "any"), from the joint tokenizer's ranges."""
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}.")
        allowed = torch.zeros(len(tokenizer), dtype=torch.bool)
        if modality in ("text", "any"):
            allowed[tokenizer.text_token_ids.start : tokenizer.text_token_ids.stop] = True
        if modality in ("speech", "any"):
            allowed[tokenizer.speech_token_ids.start : tokenizer.speech_token_ids.stop] = True
        if modality == "any":  # switching modality needs the markers; within one modality they mean nothing
            allowed[[tokenizer.text_marker_id, tokenizer.speech_marker_id]] = True
        if allow_eos and tokenizer.eos_token_id is not None:
            allowed[tokenizer.eos_token_id] = True
        return cls(allowed)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[-1] != self.allowed.shape[0]:
            raise ValueError(
                f"The model scores {scores.shape[-1]} ids but the modality mask covers {self.allowed.shape[0]}; "
                "build the processor from the model's own tokenizer."
            )
        return scores.masked_fill(~self.allowed.to(scores.device), float("-inf"))


def generate_in_modality(
    model,
    tokenizer,
    prompts: Sequence[Sequence],
    output_modality: str,
    stop_at_eos: bool = True,
    **generate_kwargs,
) -> list[list[str | np.ndarray]]:
    """Continue each prompt (a list of text / unit segments) in `output_modality` ("text" or "speech").

    The marker of the output modality is appended where the prompt ends in the other modality, the prompts
    are left-padded into one batch, and the continuation is returned as typed segments per prompt (the
    tokenizer's `decode_segments`). With `stop_at_eos=False`, EOS cannot be generated, so every
    continuation runs to `max_new_tokens`. Other keyword arguments go to `model.generate`.
    """
    if output_modality not in ("text", "speech"):
        raise ValueError(f"output_modality must be 'text' or 'speech', got {output_modality!r}.")
    if isinstance(prompts, (str, np.ndarray)) or not len(prompts):
        raise ValueError("prompts must be a non-empty list of prompts, each a list of segments "
                         "(e.g. [['In the beginning'], [units]]).")
    marker = tokenizer.text_marker_id if output_modality == "text" else tokenizer.speech_marker_id
    rows = []
    for prompt in prompts:
        ids = tokenizer(segments=list(prompt))["input_ids"]
        if ids[-1] >= tokenizer.speech_token_offset:
            ends_in = "speech"
        elif ids[-1] in tokenizer.text_token_ids:
            ends_in = "text"
        else:
            ends_in = None
        rows.append(ids if ends_in == output_modality else ids + [marker])
    width = max(map(len, rows))
    device = model.device
    input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(r)) + r for r in rows], device=device)
    attention_mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    processors = LogitsProcessorList(generate_kwargs.pop("logits_processor", []))
    processors.append(ModalityLogitsProcessor.from_tokenizer(tokenizer, output_modality, allow_eos=stop_at_eos))
    generated = model.generate(
        input_ids, attention_mask=attention_mask, logits_processor=processors,
        pad_token_id=tokenizer.pad_token_id, **generate_kwargs,
    )
    return [tokenizer.decode_segments(row[width:]) for row in generated]
