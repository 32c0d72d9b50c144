"""Training-sequence formats of both papers, built from front-end rows `{text, words, units, word_spans}`.

- `ulm` (speech only) and `tlm` (text only);
- `cst_speech_text` / `cst_text_speech`: SUTLM's concatenated speech-text, in either order;
- `ast`: SUTLM's word-level alternation: speech spans drawn from a `SpanSampler`, the text between them
  sized so that a target fraction of the words is spoken;
- `interleave`: LST's interleaving: random starting modality, text blocks of U[5, 30] words (at most 0.6 of
  the document), each speech block half the previous text block.

Every switch of modality is a new segment, so the tokenizer puts a marker there. Speech cut at a block
boundary is split in the middle of the silence between the two words, so no frame is lost or repeated.
Each output row has `input_ids`, `modality_mask`, and `word_spans` / `silence_spans` in token positions
(speech words, and the speech between or around them), which is what aligned, mixed and curriculum
patching need at training time. Documents start with BOS and end with EOS: the separators that packing
relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenization.segments import SpeechSegment, as_unit_array

FORMATS = ("ulm", "tlm", "cst_speech_text", "cst_text_speech", "ast", "interleave")
SAMPLER_KINDS = ("poisson", "uniform", "fixed")


@dataclass
class SpanSampler:
    """Span lengths in words: `poisson` (mean `length`, at least 1), `uniform` on [`low`, `high`], or `fixed`."""

    kind: str = "poisson"
    length: float = 10.0
    low: int = 1
    high: int = 10

    def __post_init__(self):
        if self.kind not in SAMPLER_KINDS:
            raise ValueError(f"Span sampler kind must be one of {SAMPLER_KINDS}, got {self.kind!r}.")
        if (self.kind != "uniform" and self.length <= 0) or (self.kind == "uniform" and not 1 <= self.low <= self.high):
            raise ValueError(f"Bad span sampler parameters: {self}.")

    def sample(self, rng: np.random.Generator, scale: float = 1.0) -> int:
        """One span length; `scale` stretches the distribution (used for the text between speech spans)."""
        if self.kind == "poisson":
            return max(1, int(rng.poisson(self.length * scale)))
        if self.kind == "uniform":
            return max(1, int(round(rng.integers(self.low, self.high + 1) * scale)))
        return max(1, int(round(self.length * scale)))


@dataclass
class AstConfig:
    """SUTLM's AST: speech spans from `sampler`; `speech_fraction` of the words end up spoken on average."""

    sampler: SpanSampler
    speech_fraction: float = 0.3

    def __post_init__(self):
        if not 0 < self.speech_fraction < 1:
            raise ValueError(f"speech_fraction must be in (0, 1), got {self.speech_fraction}.")


@dataclass
class InterleaveConfig:
    """LST's interleaving (paper A.1.1)."""

    min_text_words: int = 5
    max_text_words: int = 30
    max_text_fraction: float = 0.6
    speech_per_text: float = 0.5


def ast_blocks(num_words: int, config: AstConfig, rng: np.random.Generator) -> list[tuple[bool, int, int]]:
    """`(is_speech, first_word, end_word)` blocks alternating from a random first modality."""
    text_scale = (1 - config.speech_fraction) / config.speech_fraction
    speech = bool(rng.random() < config.speech_fraction)
    blocks, start = [], 0
    while start < num_words:
        length = config.sampler.sample(rng, 1.0 if speech else text_scale)
        blocks.append((speech, start, min(start + length, num_words)))
        start, speech = start + length, not speech
    return blocks


def interleave_blocks(num_words: int, config: InterleaveConfig, rng: np.random.Generator) -> list[tuple[bool, int, int]]:
    """LST blocks: text U[min, max] words capped at `max_text_fraction` of the document; speech half of the
    previous text block (or of a freshly drawn text length when speech comes first)."""
    cap = max(1, int(config.max_text_fraction * num_words))
    low, high = min(config.min_text_words, cap), min(config.max_text_words, cap)
    speech = bool(rng.random() < 0.5)
    blocks, start = [], 0
    text_length = int(rng.integers(low, high + 1))
    while start < num_words:
        if speech:
            length = max(1, int(round(config.speech_per_text * text_length)))
        else:
            text_length = length = int(rng.integers(low, high + 1))
        blocks.append((speech, start, min(start + length, num_words)))
        start, speech = start + length, not speech
    return blocks


def speech_block(units: np.ndarray, frame_spans: np.ndarray, first: int, end: int) -> SpeechSegment:
    """Words `first..end-1` as speech: from the middle of the silence before the first word to the middle of
    the silence after the last (the utterance's edges at its ends), with word spans relative to the cut."""
    start_frame = 0 if first == 0 else _cut(frame_spans, first)
    end_frame = len(units) if end == len(frame_spans) else _cut(frame_spans, end)
    return SpeechSegment(units[start_frame:end_frame], frame_spans[first:end] - start_frame)


def _cut(frame_spans: np.ndarray, word: int) -> int:
    """The frame where speech is cut before `word`: the middle of the silence before it (odd frames go first)."""
    return int(frame_spans[word - 1, 1] + frame_spans[word, 0] + 1) // 2


def blocks_to_segments(words: list[str], units: np.ndarray, frame_spans: np.ndarray, blocks) -> list:
    return [speech_block(units, frame_spans, first, end) if is_speech else " ".join(words[first:end])
            for is_speech, first, end in blocks]


def _frame_spans(row_spans, units: np.ndarray, where: str) -> np.ndarray:
    spans = np.asarray(row_spans, dtype=np.int64).reshape(-1, 2)
    if len(spans) and (spans[:, 0].min() < 0 or spans[:, 1].max() > len(units) or (spans[:, 1] <= spans[:, 0]).any()
                       or (spans[1:, 0] < spans[:-1, 1]).any()):
        raise ValueError(f"{where}: word spans must be ordered, non-empty and inside the {len(units)} unit frames.")
    return spans


def document_segments(format: str, row: dict, rng: np.random.Generator, ast: AstConfig | None = None,
                      interleave: InterleaveConfig | None = None, where: str = "row") -> list:
    """The segments of one document in `format`, from one front-end row."""
    if format == "tlm":
        return [row["text"]]
    # Not np.asarray(..., dtype=int64): that would truncate float units without a word.
    units = as_unit_array(row["units"], where).astype(np.int64, copy=False)
    spans = _frame_spans(row["word_spans"], units, where) if row.get("word_spans") is not None else None
    speech = SpeechSegment(units, spans) if spans is not None else units
    if format == "ulm":
        return [speech]
    if format in ("cst_speech_text", "cst_text_speech"):
        return [speech, row["text"]] if format == "cst_speech_text" else [row["text"], speech]
    if spans is None or len(spans) != len(row["words"]):
        raise ValueError(f"{where}: format {format!r} needs one word span per word (word-aligned paired data).")
    if format == "ast":
        blocks = ast_blocks(len(spans), ast, rng)
    elif format == "interleave":
        blocks = interleave_blocks(len(spans), interleave, rng)
    else:
        raise ValueError(f"Unknown format {format!r}; choose one of {FORMATS}.")
    return blocks_to_segments(list(row["words"]), units, spans, blocks)


def silence_token_spans(modality_mask: np.ndarray, word_spans: np.ndarray) -> np.ndarray:
    """`[start, end)` runs of speech tokens outside every word span: the silences aligned patching keeps apart."""
    outside = modality_mask.astype(bool).copy()
    for start, end in word_spans:
        outside[start:end] = False
    edges = np.flatnonzero(np.diff(np.r_[0, outside.astype(np.int8), 0]))
    return edges.reshape(-1, 2)


def encode_documents(tokenizer, documents: list[list]) -> dict[str, list]:
    """Token rows for documents (lists of segments): BOS ... EOS, the modality mask, word and silence spans."""
    encoded = tokenizer(segments=documents, padding=True, padding_side="right", return_tensors="np")
    lengths = encoded["attention_mask"].sum(axis=1)
    all_spans = encoded.get("word_spans", [None] * len(documents))
    rows = {"input_ids": [], "modality_mask": [], "word_spans": [], "silence_spans": []}
    add_eos = not tokenizer.add_eos_token
    for ids, modality, length, spans in zip(encoded["input_ids"], encoded["modality_mask"], lengths, all_spans):
        ids, modality = ids[:length], modality[:length]
        if add_eos:
            ids, modality = np.r_[ids, tokenizer.eos_token_id], np.r_[modality, 0]
        spans = np.zeros((0, 2), dtype=np.int64) if spans is None else np.asarray(spans).reshape(-1, 2)
        rows["input_ids"].append(ids.astype(np.int32))
        rows["modality_mask"].append(modality.astype(np.int8))
        rows["word_spans"].append(spans.astype(np.int32))
        rows["silence_spans"].append(silence_token_spans(modality, spans).astype(np.int32))
    return rows
