"""Generation cache for LST: what each new token needs, so that it costs one local step.

- `local`: key/values of the local encoder and decoder self-attention layers (a transformers `DynamicCache`;
  the blocked sliding-window attention reads only the last window of it).
- `global_`: key/values of the global transformer (a second `DynamicCache`), which advances only when a
  patch closes. In a batch, a row whose patch did not close gets a masked dummy slot, so every row keeps
  the same number of slots; `slot_is_real` marks the real ones, and patch positions count real slots only.
- `patch_keys`: the decoder's projection of each slot's global state, so a step never re-projects history.
- `encoder_states`, `patch_ids`, `token_is_real`: the encoder's token states and patching so far, from which a
  closing patch is pooled.
- `speech_run_length`: speech tokens in the current run, to place static patch boundaries as tokens come.
"""

from __future__ import annotations

import torch
from transformers import Cache, DynamicCache


class LSTCache(Cache):
    """A `transformers.Cache`, so that `generate` accepts it as any model's (checks, continuation, `cache=`).

    It holds no per-layer `CacheLayer`s of its own: its two key/value caches are `DynamicCache`s, and the rest
    is LST's patch bookkeeping. `is_compileable` is False, as for a dynamic cache.
    """

    def __init__(self):
        super().__init__(layers=[])
        self.local = DynamicCache()
        self.global_ = DynamicCache()
        self.patch_keys: torch.Tensor | None = None  # (batch, slots, k, local width)
        self.slot_is_real: torch.Tensor | None = None  # (batch, slots) bool
        self.encoder_states: torch.Tensor | None = None  # (batch, tokens, local width)
        self.patch_ids: torch.Tensor | None = None  # (batch, tokens)
        self.token_is_real: torch.Tensor | None = None  # (batch, tokens) bool
        self.speech_run_length: torch.Tensor | None = None  # (batch,)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Tokens seen so far (what `generate` asks a cache)."""
        return 0 if self.patch_ids is None else self.patch_ids.shape[1]

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Follow beam search: keep the rows `beam_idx` selects."""
        self.local.reorder_cache(beam_idx)
        self.global_.reorder_cache(beam_idx)
        for name in ("patch_keys", "slot_is_real", "encoder_states", "patch_ids", "token_is_real", "speech_run_length"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.index_select(0, beam_idx.to(value.device)))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows `indices` (contrastive search and batch pruning)."""
        self.reorder_cache(indices)

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Repeat each row `repeats` times in place (generate's expansion for beams or several sequences)."""
        if self.patch_ids is not None:
            rows = torch.arange(self.patch_ids.shape[0], device=self.patch_ids.device)
            self.reorder_cache(rows.repeat_interleave(repeats))

    def append_tokens(self, encoder_states, patch_ids, token_is_real, is_speech) -> None:
        """Record new tokens (`(batch, n)` tensors) and update the current speech run."""
        if self.patch_ids is None:
            self.encoder_states, self.patch_ids, self.token_is_real = encoder_states, patch_ids, token_is_real
            self.speech_run_length = torch.zeros(patch_ids.shape[0], dtype=torch.long, device=patch_ids.device)
        else:
            self.encoder_states = torch.cat([self.encoder_states, encoder_states], dim=1)
            self.patch_ids = torch.cat([self.patch_ids, patch_ids], dim=1)
            self.token_is_real = torch.cat([self.token_is_real, token_is_real], dim=1)
        # The run after these tokens: the speech tokens since the last non-speech one, or, if they are all
        # speech, the previous run extended by them.
        speech = is_speech & token_is_real
        positions = torch.arange(speech.shape[1], device=speech.device)
        last_break = torch.where(~speech, positions, -1).amax(dim=1)
        self.speech_run_length = torch.where(
            last_break < 0, self.speech_run_length + speech.shape[1], speech.shape[1] - 1 - last_break
        )

    def append_slots(self, patch_keys: torch.Tensor, slot_is_real: torch.Tensor) -> None:
        """Record global slots (`(batch, n, k, width)` projected states and their real flags)."""
        if self.patch_keys is None:
            self.patch_keys, self.slot_is_real = patch_keys, slot_is_real
        else:
            self.patch_keys = torch.cat([self.patch_keys, patch_keys], dim=1)
            self.slot_is_real = torch.cat([self.slot_is_real, slot_is_real], dim=1)
