"""Where LST's latent patches begin: pure, vectorised functions over a batch of token sequences.

Only runs of speech tokens are grouped; every text token, marker, BOS, EOS and padding token is a patch
of its own. A patching is a boolean `(batch, length)` mask of patch starts, and `patch_ids_from_starts`
turns it into each token's patch index. Modes:

- `static`: a speech run is cut into chunks of `patch_size` tokens, the remainder last (10 -> 4, 4, 2);
- `aligned`: one patch per word, and any patch longer than `max_patch_length` split (13 with max 8 -> 8, 5).
  Silences are patches of their own (`silences="separate"`, the paper's "sil sep.") or merged into the
  neighbouring words (`"merged"`): a silence between two words is cut in its middle (an odd frame goes to
  the earlier word, as the data formats cut speech at a modality switch), a silence at the edge of a speech
  run joins the word next to it;
- `bpe`: aligned at the text BPE pieces of each word (piece spans nest inside word spans);
- `mixed`: static or aligned (words or pieces, `aligned_by`), drawn per sequence;
- `curriculum`: aligned with probability 1 until step t1, falling linearly to 0 at step t2;
- `none`: every token its own patch (the model then runs like a token-level LM).

Generation and evaluation always use `static`: it needs no aligner.
"""

from __future__ import annotations

import numpy as np
import torch

from .configuration_lst import PATCHING_MODES


def static_patch_starts(speech_mask: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Patch starts when each speech run is cut into chunks of `patch_size`."""
    return _split_long_patches(~speech_mask.bool() | _run_starts(speech_mask.bool()), patch_size)


def aligned_patch_starts(
    speech_mask: torch.Tensor, aligned_boundaries: torch.Tensor, max_patch_length: int
) -> torch.Tensor:
    """Patch starts at alignment boundaries inside speech runs.

    `aligned_boundaries` marks where a word (or piece) patch begins: see `word_boundary_mask` (silences
    apart) and `merged_silence_boundary_mask`; boundaries on non-speech tokens change nothing.
    """
    speech = speech_mask.bool()
    starts = ~speech | _run_starts(speech) | (aligned_boundaries.bool() & speech)
    return _split_long_patches(starts, max_patch_length)


def word_boundary_mask(word_spans: list, shape: tuple[int, int]) -> torch.Tensor:
    """A `(batch, length)` mask of span starts and ends from per-sequence `[start, end)` token spans: with
    word spans, the silences between words become patches of their own."""
    mask = np.zeros(shape, dtype=bool)
    for row, spans in enumerate(word_spans):
        if spans is None or len(spans) == 0:
            continue
        spans = np.asarray(spans)
        mask[row, spans[:, 0]] = True
        ends = spans[:, 1]
        mask[row, ends[ends < shape[1]]] = True
    return torch.from_numpy(mask)


def merged_silence_boundary_mask(word_spans: list, speech_mask: np.ndarray) -> torch.Tensor:
    """A `(batch, length)` mask of patch starts that merge each silence into its neighbouring words.

    Between two words of the same speech run the patch boundary is the middle of the silence between them
    (`(end + next_start + 1) // 2`); words that a modality switch separates get no boundary here, because the
    run's own start and end already bound them, and the silence at the run's edge stays with its word.
    """
    speech = np.asarray(speech_mask, dtype=bool)
    mask = np.zeros(speech.shape, dtype=bool)
    outside_speech = np.cumsum(~speech, axis=1)
    for row, spans in enumerate(word_spans):
        if spans is None or len(spans) < 2:
            continue
        spans = np.asarray(spans, dtype=np.int64)
        ends, next_starts = spans[:-1, 1], spans[1:, 0]
        # the same run: no non-speech token from the earlier word's end to the next word's start
        same_run = outside_speech[row, next_starts] == outside_speech[row, np.maximum(ends - 1, 0)]
        mask[row, ((ends + next_starts + 1) // 2)[same_run]] = True
    return torch.from_numpy(mask)


def aligned_probability(step: int, aligned_until: int, static_from: int) -> float:
    """The curriculum: 1 before step t1 (`aligned_until`), linear down to 0 at t2 (`static_from`), then 0."""
    if step < aligned_until:
        return 1.0
    if step >= static_from:
        return 0.0
    return 1.0 - (step - aligned_until) / (static_from - aligned_until)


def patch_starts(
    mode: str,
    speech_mask: torch.Tensor,
    patch_size: int,
    max_patch_length: int,
    aligned_boundaries: torch.Tensor | None = None,
    step: int = 0,
    aligned_until: int = 0,
    static_from: int = 0,
    mixed_aligned_probability: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Patch starts for a batch under any patching mode (the training loop passes the current step).

    `aligned_boundaries` are the word or piece boundaries the aligned side uses (`lst_speech.training.data.collator` builds
    them for the run's `aligned_by` and `silences`); `bpe` is `aligned` given piece boundaries.
    """
    if mode not in PATCHING_MODES:
        raise ValueError(f"Unknown patching mode {mode!r}; choose one of {PATCHING_MODES}.")
    if mode == "none":
        return torch.ones_like(speech_mask, dtype=torch.bool)
    static = static_patch_starts(speech_mask, patch_size)
    if mode == "static":
        return static
    if aligned_boundaries is None:
        raise ValueError(
            f"Patching mode {mode!r} needs word boundaries (word spans from the data); use 'static' at inference."
        )
    aligned = aligned_patch_starts(speech_mask, aligned_boundaries, max_patch_length)
    if mode in ("aligned", "bpe"):
        return aligned
    probability = (
        mixed_aligned_probability if mode == "mixed" else aligned_probability(step, aligned_until, static_from)
    )
    use_aligned = torch.rand(speech_mask.shape[0], generator=generator) < probability
    return torch.where(use_aligned.to(static.device)[:, None], aligned, static)


def config_patch_starts(config, speech_mask: torch.Tensor, aligned_boundaries: torch.Tensor | None = None,
                        step: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """A training batch's patch starts under the patching its `LSTConfig` describes (mode, sizes, curriculum
    steps, mixing probability): the one place a run turns its config into patches."""
    return patch_starts(config.patching_mode, speech_mask, config.patch_size, config.max_patch_length,
                        aligned_boundaries, step=step, aligned_until=config.curriculum_aligned_until,
                        static_from=config.curriculum_static_from,
                        mixed_aligned_probability=config.mixed_aligned_probability, generator=generator)


def patch_ids_from_starts(starts: torch.Tensor) -> torch.Tensor:
    """Each token's patch index within its sequence (0-based). The first token always starts a patch."""
    starts = starts.clone()
    starts[:, 0] = True
    return starts.long().cumsum(dim=1) - 1


def patch_lengths_from_starts(starts: torch.Tensor) -> list[list[int]]:
    """Patch lengths per sequence, for inspection and tests."""
    lengths = []
    for row in starts:
        positions = torch.nonzero(row).flatten().tolist()
        if not positions or positions[0] != 0:
            positions = [0, *positions]
        lengths.append(np.diff([*positions, row.numel()]).tolist())
    return lengths


def _run_starts(speech: torch.Tensor) -> torch.Tensor:
    previous = torch.nn.functional.pad(speech[:, :-1], (1, 0), value=False)
    return speech & ~previous


def _split_long_patches(starts: torch.Tensor, max_length: int) -> torch.Tensor:
    """Add a start every `max_length` tokens inside any patch longer than that."""
    if max_length < 1:
        raise ValueError(f"Patch length limit must be at least 1, got {max_length}.")
    positions = torch.arange(starts.shape[1], device=starts.device).expand_as(starts)
    last_start = torch.where(starts, positions, torch.zeros_like(positions)).cummax(dim=1).values
    return starts | ((positions - last_start) % max_length == 0)
