"""Generation cache for LST: what each new token needs, so that it costs one local step.

- `local`: key/values of the local encoder and decoder self-attention layers (a transformers `DynamicCache`;
  the blocked sliding-window attention reads only the last window of it).
- `global_`: key/values of the global transformer (a second `DynamicCache`), which advances only when a
  patch closes. In a batch, a row whose patch did not close gets a masked dummy slot, so every row keeps
  the same number of slots; `slot_is_real` marks the real ones, and patch positions count real slots only.
- `patch_keys`: the decoder's projection of each slot's global state, so a step never re-projects history.
- `cross_projections`: per decoder layer, its cross-attention's keys and values of the null state and of every
  slot, `(batch, (1 + slots) * k, heads, head_dim)` each, filled by the model's cached steps.
- `encoder_states`, `patch_ids`, `token_is_real`, `token_is_speech`: the encoder's token states and the
  patching so far, from which a closing patch is pooled.
- `speech_run_length`: speech tokens in the current run, to place static patch boundaries as tokens come.
"""

from __future__ import annotations

import torch
from transformers import Cache, DynamicCache

TOKEN_FIELDS = ("encoder_states", "patch_ids", "token_is_real", "token_is_speech")
SLOT_FIELDS = ("patch_keys", "slot_is_real")


class LSTCache(Cache):
    """A `transformers.Cache`, so that every decoding strategy of `generate` works on LST.

    Its two key/value caches are `DynamicCache`s, and the rest is LST's patch bookkeeping. Its `layers`, what the
    library counts and inspects (`len(cache)`, `is_linear`, `is_croppable`, the key shapes), are the local decoder's
    self-attention layers, one per `config.num_hidden_layers`, as the model's `hidden_states` and `attentions` are.
    `crop` rolls all of it back (assisted and prompt-lookup decoding); `is_compileable` is False, as for a dynamic
    cache.
    """

    def __init__(self):
        # Not Cache.__init__: it would assign `layers`, which here is a view of the local cache (see `layers`).
        self.layer_class_to_replicate = None
        self.offloading = False
        # The local cache's first layers are the encoder's; the model sets their number on its first forward.
        self.encoder_num_layers = 0
        self.local = DynamicCache()
        self.global_ = DynamicCache()
        self.patch_keys: torch.Tensor | None = None  # (batch, slots, k, local width)
        self.slot_is_real: torch.Tensor | None = None  # (batch, slots) bool
        self.encoder_states: torch.Tensor | None = None  # (batch, tokens, local width)
        self.patch_ids: torch.Tensor | None = None  # (batch, tokens)
        self.token_is_real: torch.Tensor | None = None  # (batch, tokens) bool
        self.token_is_speech: torch.Tensor | None = None  # (batch, tokens) bool
        self.speech_run_length: torch.Tensor | None = None  # (batch,)
        self.cross_projections: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def layers(self) -> list:
        """The local decoder's self-attention key/values, `(batch, local kv heads, tokens, head_dim)` per layer."""
        return self.local.layers[self.encoder_num_layers :]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Tokens seen so far (what `generate` asks a cache)."""
        return 0 if self.patch_ids is None else self.patch_ids.shape[1]

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Follow beam search: keep the rows `beam_idx` selects."""
        self.local.reorder_cache(beam_idx)
        self.global_.reorder_cache(beam_idx)
        for name in (*SLOT_FIELDS, *TOKEN_FIELDS, "speech_run_length"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.index_select(0, beam_idx.to(value.device)))
        if self.cross_projections is not None:
            self.cross_projections = [tuple(s.index_select(0, beam_idx.to(s.device)) for s in layer)
                                      for layer in self.cross_projections]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows `indices` (contrastive search and batch pruning)."""
        self.reorder_cache(indices)

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Repeat each row `repeats` times in place (generate's expansion for beams or several sequences)."""
        if self.patch_ids is not None:
            rows = torch.arange(self.patch_ids.shape[0], device=self.patch_ids.device)
            self.reorder_cache(rows.repeat_interleave(repeats))

    def crop(self, tokens_to_remove: int) -> None:
        """Forget the last `-tokens_to_remove` tokens (transformers' convention: a negative count), as if they
        had never come: their local key/values, and every global slot that one of them closed."""
        if tokens_to_remove > 0:
            raise ValueError(f"crop takes a negative number of tokens to remove, got {tokens_to_remove}.")
        seen = self.get_seq_length()
        if tokens_to_remove == 0 or seen == 0:
            return
        keep = seen + tokens_to_remove
        if keep <= 0:
            encoder_num_layers = self.encoder_num_layers
            self.__init__()
            self.encoder_num_layers = encoder_num_layers
            return
        self.local.crop(tokens_to_remove)
        for name in TOKEN_FIELDS:
            setattr(self, name, getattr(self, name)[:, :keep])
        self.speech_run_length = torch.zeros_like(self.speech_run_length)
        self._advance_speech_run(self.token_is_speech & self.token_is_real)
        # A row's real slots are its closed real patches, in order (a patch is all padding or all real). The
        # kept tokens close as many as the real patches they start, less the open one if it is real: the row
        # keeps that many of its real slots. Slots no row keeps are removed from the end, the rest are masked.
        starts = torch.ones_like(self.token_is_real)
        starts[:, 1:] = self.patch_ids[:, 1:] != self.patch_ids[:, :-1]
        closed = (starts & self.token_is_real).sum(dim=1) - self.token_is_real[:, -1].long()
        kept_slots = self.slot_is_real & (self.slot_is_real.cumsum(dim=1) <= closed[:, None])
        any_row = kept_slots.any(dim=0).nonzero()
        retained = int(any_row[-1]) + 1 if any_row.numel() else 0
        self.global_.crop(retained - kept_slots.shape[1])
        self.patch_keys = self.patch_keys[:, :retained]
        self.slot_is_real = kept_slots[:, :retained]
        if self.cross_projections is not None:
            kept_keys = (1 + retained) * self.patch_keys.shape[2]
            self.cross_projections = [tuple(s[:, :kept_keys] for s in layer) for layer in self.cross_projections]

    def append_tokens(self, encoder_states, patch_ids, token_is_real, is_speech) -> None:
        """Record new tokens (`(batch, n)` tensors) and update the current speech run."""
        new = {"encoder_states": encoder_states, "patch_ids": patch_ids, "token_is_real": token_is_real,
               "token_is_speech": is_speech}
        if self.patch_ids is None:
            for name, value in new.items():
                setattr(self, name, value)
            self.speech_run_length = torch.zeros(patch_ids.shape[0], dtype=torch.long, device=patch_ids.device)
        else:
            for name, value in new.items():
                setattr(self, name, torch.cat([getattr(self, name), value], dim=1))
        self._advance_speech_run(is_speech & token_is_real)

    def _advance_speech_run(self, speech: torch.Tensor) -> None:
        """The run after `speech` `(batch, n)`: the speech tokens since the last non-speech one, or, if they are
        all speech, the previous run extended by them."""
        positions = torch.arange(speech.shape[1], device=speech.device)
        last_break = torch.where(~speech, positions, -1).amax(dim=1)
        self.speech_run_length = torch.where(
            last_break < 0, self.speech_run_length + speech.shape[1], speech.shape[1] - 1 - last_break
        )

    def cross_projected_slots(self, keys_per_slot: int) -> int:
        """How many slots `cross_projections` covers (-1 before the null state's keys are in)."""
        if self.cross_projections is None:
            return -1
        return self.cross_projections[0][0].shape[1] // keys_per_slot - 1

    def append_cross_projections(self, projections: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Record each decoder layer's keys and values of new slots (after the null state's, the first time)."""
        if self.cross_projections is None:
            self.cross_projections = projections
        else:
            self.cross_projections = [tuple(torch.cat([old, new], dim=1) for old, new in zip(layer, added))
                                      for layer, added in zip(self.cross_projections, projections)]

    def append_slots(self, patch_keys: torch.Tensor, slot_is_real: torch.Tensor) -> None:
        """Record global slots (`(batch, n, k, width)` projected states and their real flags)."""
        if self.patch_keys is None:
            self.patch_keys, self.slot_is_real = patch_keys, slot_is_real
        else:
            self.patch_keys = torch.cat([self.patch_keys, patch_keys], dim=1)
            self.slot_is_real = torch.cat([self.slot_is_real, slot_is_real], dim=1)
