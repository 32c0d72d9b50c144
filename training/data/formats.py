"""Training-sequence formats of both papers, built from front-end rows `{text, words, units, word_spans}`.

- `ulm` (speech only) and `tlm` (text only);
- `cst_speech_text` / `cst_text_speech`: SUTLM's concatenated speech-text, in either order;
- `ast`: SUTLM's word-level alternation: speech spans drawn from a `SpanSampler`, the text between them
  sized so that a target fraction of the words is spoken;
- `interleave`: LST's interleaving: random starting modality, text blocks of U[5, 30] words (at most 0.6 of
  the document), each speech block half the previous text block.

Every switch of modality is a new segment, so the tokenizer puts a marker there. Speech cut at a block
boundary is split in the middle of the silence between the two words, so no frame is lost or repeated.
Each output row has `input_ids`, `modality_mask`, and `word_spans` / `silence_spans` / `piece_spans` in
token positions (speech words, the speech between or around them, and the text BPE pieces of each spoken
word), which is what aligned, bpe, mixed and curriculum patching need at training time. Piece spans come
from front-end rows with `character_starts` (the frame each character of a word starts at): the word's text
is split by the text SentencePiece model and its frames cut where each piece's first character starts.
Documents start with BOS and end with EOS: the separators that packing relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sentencepiece

from lst_speech.tokenization.segments import SpeechSegment, as_unit_array

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


@dataclass
class PiecedSpeechSegment(SpeechSegment):
    """Speech with word spans and the frame spans of the words' text pieces (nested in the words)."""

    piece_spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))


@dataclass
class WordPieces:
    """A row's piece frame spans and the word each piece belongs to."""

    spans: np.ndarray  # (pieces, 2)
    word: np.ndarray  # (pieces,)

    def of_words(self, first: int, end: int) -> np.ndarray:
        return self.spans[(self.word >= first) & (self.word < end)]


def text_piece_model(tokenizer) -> sentencepiece.SentencePieceProcessor:
    """The tokenizer's text SentencePiece model, to split spoken words into the pieces text would use."""
    return sentencepiece.SentencePieceProcessor(model_proto=tokenizer.text_model.model_bytes)


def word_pieces(words: list[str], word_spans: np.ndarray, character_starts: list, piece_model,
                where: str) -> WordPieces:
    """Each word's text pieces as `[start, end)` frame spans that partition the word's span, cut at the frame
    where each piece's first character starts. A piece too short to own a frame joins the piece before it."""
    spans, owners = [], []
    for index, (word, (start, end), characters) in enumerate(zip(words, word_spans, character_starts)):
        characters = np.asarray(characters, dtype=np.int64)
        if len(characters) != len(word):
            raise ValueError(f"{where}: word {index} {word!r} has {len(word)} characters but {len(characters)} "
                             "character starts.")
        # SentencePiece reports byte offsets; count the characters before each piece's first byte
        byte_ends = np.cumsum([len(c.encode("utf-8")) for c in word])
        begins = {int(np.searchsorted(byte_ends, p.begin, side="right"))
                  for p in piece_model.encode(word, return_type="proto").pieces}
        cuts = np.unique(np.array([characters[c] for c in begins if 0 < c < len(word)], dtype=np.int64))
        bounds = np.r_[start, cuts[(cuts > start) & (cuts < end)], end].astype(np.int64)
        spans.append(np.stack([bounds[:-1], bounds[1:]], axis=1))
        owners.append(np.full(len(bounds) - 1, index))
    if not spans:
        return WordPieces(np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64))
    return WordPieces(np.concatenate(spans), np.concatenate(owners))


def speech_block(units: np.ndarray, frame_spans: np.ndarray, first: int, end: int,
                 pieces: WordPieces | None = None) -> SpeechSegment:
    """Words `first..end-1` as speech: from the middle of the silence before the first word to the middle of
    the silence after the last (the utterance's edges at its ends), with word (and piece) spans relative to
    the cut."""
    start_frame = 0 if first == 0 else _cut(frame_spans, first)
    end_frame = len(units) if end == len(frame_spans) else _cut(frame_spans, end)
    words = frame_spans[first:end] - start_frame
    if pieces is None:
        return SpeechSegment(units[start_frame:end_frame], words)
    return PiecedSpeechSegment(units[start_frame:end_frame], words, pieces.of_words(first, end) - start_frame)


def _cut(frame_spans: np.ndarray, word: int) -> int:
    """The frame where speech is cut before `word`: the middle of the silence before it (odd frames go first)."""
    return int(frame_spans[word - 1, 1] + frame_spans[word, 0] + 1) // 2


def blocks_to_segments(words: list[str], units: np.ndarray, frame_spans: np.ndarray, blocks,
                       pieces: WordPieces | None = None) -> list:
    return [speech_block(units, frame_spans, first, end, pieces) if is_speech else " ".join(words[first:end])
            for is_speech, first, end in blocks]


def _frame_spans(row_spans, units: np.ndarray, where: str) -> np.ndarray:
    spans = np.asarray(row_spans, dtype=np.int64).reshape(-1, 2)
    if len(spans) and (spans[:, 0].min() < 0 or spans[:, 1].max() > len(units) or (spans[:, 1] <= spans[:, 0]).any()
                       or (spans[1:, 0] < spans[:-1, 1]).any()):
        raise ValueError(f"{where}: word spans must be ordered, non-empty and inside the {len(units)} unit frames.")
    return spans


def document_segments(format: str, row: dict, rng: np.random.Generator, ast: AstConfig | None = None,
                      interleave: InterleaveConfig | None = None, where: str = "row", piece_model=None) -> list:
    """The segments of one document in `format`, from one front-end row; with `piece_model` and the row's
    `character_starts`, speech carries the piece spans of its words too."""
    if format == "tlm":
        return [row["text"]]
    # Not np.asarray(..., dtype=int64): that would truncate float units without a word.
    units = as_unit_array(row["units"], where).astype(np.int64, copy=False)
    spans = _frame_spans(row["word_spans"], units, where) if row.get("word_spans") is not None else None
    pieces = None
    if spans is not None and piece_model is not None and row.get("character_starts") is not None:
        if len(row["character_starts"]) != len(spans) or len(row["words"]) != len(spans):
            raise ValueError(f"{where}: character_starts, words and word_spans must have one entry per word; got "
                             f"{len(row['character_starts'])}, {len(row['words'])} and {len(spans)}.")
        pieces = word_pieces(list(row["words"]), spans, row["character_starts"], piece_model, where)
    if spans is None:
        speech = units
    elif pieces is None:
        speech = SpeechSegment(units, spans)
    else:
        speech = PiecedSpeechSegment(units, spans, pieces.spans)
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
    return blocks_to_segments(list(row["words"]), units, spans, blocks, pieces)


def silence_token_spans(modality_mask: np.ndarray, word_spans: np.ndarray) -> np.ndarray:
    """`[start, end)` runs of speech tokens outside every word span: the silences aligned patching keeps apart."""
    outside = modality_mask.astype(bool).copy()
    for start, end in word_spans:
        outside[start:end] = False
    edges = np.flatnonzero(np.diff(np.r_[0, outside.astype(np.int8), 0]))
    return edges.reshape(-1, 2)


def _piece_token_spans(tokenizer, documents: list[list]) -> list:
    """Token spans of the pieces: the tokenizer maps any frame spans to token positions (through unit
    deduplication and unit pieces), so the documents are encoded again with piece spans in the words' place."""
    if not any(type(s) is PiecedSpeechSegment for document in documents for s in document):
        return [None] * len(documents)
    as_pieces = [[SpeechSegment(s.units, s.piece_spans) if type(s) is PiecedSpeechSegment else s for s in document]
                 for document in documents]
    encoded = tokenizer(segments=as_pieces, padding=True, padding_side="right", return_tensors="np")
    return [spans if any(type(s) is PiecedSpeechSegment for s in document) else None
            for spans, document in zip(encoded.get("word_spans", [None] * len(documents)), documents)]


def encode_documents(tokenizer, documents: list[list]) -> dict[str, list]:
    """Token rows for documents (lists of segments): BOS ... EOS, the modality mask, word, silence and piece
    spans."""
    encoded = tokenizer(segments=documents, padding=True, padding_side="right", return_tensors="np")
    lengths = encoded["attention_mask"].sum(axis=1)
    all_spans = encoded.get("word_spans", [None] * len(documents))
    all_pieces = _piece_token_spans(tokenizer, documents)
    rows = {"input_ids": [], "modality_mask": [], "word_spans": [], "silence_spans": [], "piece_spans": []}
    add_eos = not tokenizer.add_eos_token
    for ids, modality, length, spans, pieces in zip(encoded["input_ids"], encoded["modality_mask"], lengths,
                                                    all_spans, all_pieces):
        ids, modality = ids[:length], modality[:length]
        if add_eos:
            ids, modality = np.r_[ids, tokenizer.eos_token_id], np.r_[modality, 0]
        spans = np.zeros((0, 2), dtype=np.int64) if spans is None else np.asarray(spans).reshape(-1, 2)
        rows["input_ids"].append(ids.astype(np.int32))
        rows["modality_mask"].append(modality.astype(np.int8))
        rows["word_spans"].append(spans.astype(np.int32))
        rows["silence_spans"].append(silence_token_spans(modality, spans).astype(np.int32))
        rows["piece_spans"].append(np.zeros((0, 2), np.int32) if pieces is None else np.asarray(pieces, np.int32))
    return rows
