"""`SpeechUnitTextTokenizer`: one id space for text pieces, modality markers and speech tokens.

Id layout (contiguous ranges, in this order):
    specials      the SentencePiece model's leading control pieces (pad, bos, eos, unk for a model trained
                  here; unk, bos, eos for a Llama-2 `tokenizer.model`)
    text pieces   the rest of the SentencePiece vocabulary, at the SentencePiece model's own ids, so a text
                  LM's embeddings can be reused row for row
    markers       `[Text]`, then `[Speech]`; one is placed wherever the modality changes (and at the start)
    speech tokens raw units `0..K-1` (`<u_k>`), or unit pieces when a unit SentencePiece model is given
                  (`<up_k>`, SUTLM)

The structured path (`encode_segments`, or `tokenizer(segments=...)`) takes lists of text / unit segments
and maps units to ids by an offset with numpy. Plain strings are text: a string that looks like a marker
or a unit token stays literal text unless `split_special_tokens=False` is passed, which parses the
human-readable string form that `decode` produces. `tokenizer.json` holds the full vocabulary, so the
saved tokenizer loads with `AutoTokenizer` even where this package is not installed, and that generic
tokenizer gives the same ids for the string form.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
from tokenizers import AddedToken, Tokenizer
from transformers import BatchEncoding
from transformers.tokenization_utils_tokenizers import TokenizersBackend
from transformers.utils import PaddingStrategy

from .segments import Segment, SpeechSegment, _looks_like_units, parse_segments
from .sentencepiece_text import TextPieceEncoder, TextPieceModel, train_text_sentencepiece
from .unit_pieces import MAX_UNITS, UnitPieceModel, deduplicate_units

TEXT_MODEL_FILE = "text_spm.model"
UNIT_PIECE_MODEL_FILE = "unit_spm.model"
TEXT, SPEECH = 0, 1


class SpeechUnitTextTokenizer(TokenizersBackend):
    """Joint tokenizer for text and discrete speech units (LST and SUTLM).

    Args:
        text_model_file: path of the text SentencePiece model (`text_spm.model` in a saved tokenizer).
        unit_piece_model_file: optional SentencePiece model over units (SUTLM mode).
        num_units: number of discrete speech units K (e.g. 501 for LST's HuBERT-25Hz quantizer).
        deduplicate_units: collapse runs of a repeated unit before encoding (SUTLM; LST keeps them).
        text_marker, speech_marker: the modality marker strings.
        add_bos_token, add_eos_token: add BOS / EOS around every encoded sequence (default: BOS only, or
            what a saved tokenizer did).
        text_model, unit_piece_model: already-loaded models, instead of the file paths.
    """

    vocab_files_names = {
        "tokenizer_file": "tokenizer.json",
        "text_model_file": TEXT_MODEL_FILE,
        "unit_piece_model_file": UNIT_PIECE_MODEL_FILE,
    }
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        text_model_file: str | None = None,
        unit_piece_model_file: str | None = None,
        num_units: int = 501,
        deduplicate_units: bool = False,
        text_marker: str = "[Text]",
        speech_marker: str = "[Speech]",
        add_bos_token: bool | None = None,
        add_eos_token: bool | None = None,
        text_model: TextPieceModel | None = None,
        unit_piece_model: UnitPieceModel | None = None,
        tokenizer_file: str | None = None,
        **kwargs,
    ):
        # tokenizer.json is written for loaders without this package; this class rebuilds the same
        # backend from the SentencePiece models, which are the source of truth. transformers keeps
        # add_bos/eos_token only in tokenizer.json's post-processor, so they are read back from there.
        saved_bos, saved_eos = _saved_bos_eos(tokenizer_file)
        add_bos_token = saved_bos if add_bos_token is None else add_bos_token
        add_eos_token = saved_eos if add_eos_token is None else add_eos_token
        kwargs.pop("tokenizer_object", None)
        kwargs.pop("split_special_tokens", None)
        if not 0 < num_units <= MAX_UNITS:
            raise ValueError(f"num_units must be in 1..{MAX_UNITS}, got {num_units}.")
        if text_model is None:
            if text_model_file is None:
                raise ValueError(
                    "SpeechUnitTextTokenizer needs a text SentencePiece model: pass text_model_file=, or use "
                    "SpeechUnitTextTokenizer.train(...) / .from_sentencepiece(path)."
                )
            text_model = TextPieceModel.from_file(text_model_file)
        if unit_piece_model is None and unit_piece_model_file is not None:
            with open(unit_piece_model_file, "rb") as handle:
                unit_piece_model = UnitPieceModel(handle.read(), num_units)
        if unit_piece_model is not None and unit_piece_model.num_units != num_units:
            raise ValueError(
                f"The unit-piece model was trained for {unit_piece_model.num_units} units but num_units={num_units}."
            )

        self.text_model = text_model
        self.unit_piece_model = unit_piece_model
        self.num_units = num_units
        self.deduplicate_units = deduplicate_units
        self.text_marker, self.speech_marker = text_marker, speech_marker
        self._text_encoder = TextPieceEncoder(text_model)

        num_speech_tokens = num_units if unit_piece_model is None else unit_piece_model.num_pieces
        speech_template = "<u_{}>" if unit_piece_model is None else "<up_{}>"
        self.speech_token_strings = [speech_template.format(i) for i in range(num_speech_tokens)]

        backend = Tokenizer.from_str(self._text_encoder.pipeline.to_str())
        for marker in (text_marker, speech_marker):
            if backend.token_to_id(marker) is not None:
                raise ValueError(f"The marker {marker!r} is already a piece of the text model; choose another.")
        backend.add_special_tokens(
            [AddedToken(m, special=True, normalized=False) for m in (text_marker, speech_marker)]
        )
        backend.add_tokens(
            [AddedToken(s, special=False, normalized=False) for s in self.speech_token_strings]
        )

        # A model without a pad piece (Llama-2) pads with <unk>; padding is masked out anyway.
        kwargs.setdefault("pad_token", text_model.pad_piece or text_model.unk_piece)
        kwargs.setdefault("bos_token", text_model.bos_piece)
        kwargs.setdefault("eos_token", text_model.eos_piece)
        kwargs.setdefault("unk_token", text_model.unk_piece)
        super().__init__(
            tokenizer_object=backend,
            num_units=num_units,
            deduplicate_units=deduplicate_units,
            text_marker=text_marker,
            speech_marker=speech_marker,
            add_bos_token=add_bos_token,
            add_eos_token=add_eos_token,
            **kwargs,
        )
        # Literal text by default: "<u_3>" typed by a user is text, not a unit (no injection). Not
        # stored in the config, so the generic loader keeps parsing the string form.
        self.split_special_tokens = True

        size = text_model.vocab_size
        self.special_token_ids = range(0, text_model.num_leading_specials)
        self.text_token_ids = range(text_model.num_leading_specials, size)
        self.marker_token_ids = range(size, size + 2)
        self.text_marker_id, self.speech_marker_id = size, size + 1
        self.speech_token_ids = range(size + 2, size + 2 + num_speech_tokens)
        self.speech_token_offset = size + 2
        if self.convert_tokens_to_ids(self.speech_token_strings[-1]) != self.speech_token_ids[-1]:
            raise RuntimeError("Added tokens did not receive contiguous ids; the joint id layout is broken.")

    # ------------------------------------------------------------------ construction

    @classmethod
    def train(
        cls,
        texts,
        vocab_size: int = 8000,
        model_type: str = "unigram",
        num_units: int = 501,
        unit_sequences=None,
        unit_vocab_size: int | None = None,
        unit_model_type: str = "bpe",
        deduplicate_units: bool = False,
        **kwargs,
    ) -> SpeechUnitTextTokenizer:
        """Train the text SentencePiece model (and, with `unit_vocab_size`, unit pieces) and build a tokenizer.

        `texts` is an iterable of strings. For SUTLM's unit pieces pass `unit_sequences` (an iterable of unit
        arrays) and `unit_vocab_size` (1k, 10k or 32k in the paper); pieces are learnt on deduplicated units
        when `deduplicate_units` is set, as they will be encoded.
        """
        text_model = train_text_sentencepiece(texts, vocab_size=vocab_size, model_type=model_type)
        unit_piece_model = None
        if unit_vocab_size is not None:
            if unit_sequences is None:
                raise ValueError("unit_vocab_size needs unit_sequences to train the unit pieces on.")
            unit_piece_model = UnitPieceModel.train(
                unit_sequences, num_units, unit_vocab_size, unit_model_type, deduplicate=deduplicate_units
            )
        return cls(
            text_model=text_model,
            unit_piece_model=unit_piece_model,
            num_units=num_units,
            deduplicate_units=deduplicate_units,
            **kwargs,
        )

    @classmethod
    def from_sentencepiece(cls, text_model_file: str | os.PathLike, **kwargs) -> SpeechUnitTextTokenizer:
        """Build a tokenizer around an existing text SentencePiece model (e.g. a Llama-2 `tokenizer.model`)."""
        return cls(text_model=TextPieceModel.from_file(text_model_file), **kwargs)

    @classmethod
    def convert_to_native_format(cls, trust_remote_code=False, **kwargs):
        # Our __init__ rebuilds the backend from the SentencePiece files itself.
        return kwargs

    def _save_pretrained(self, save_directory, file_names, legacy_format=None, filename_prefix=None):
        file_names = super()._save_pretrained(save_directory, file_names, legacy_format, filename_prefix)
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        to_write = {TEXT_MODEL_FILE: self.text_model.model_bytes}
        if self.unit_piece_model is not None:
            to_write[UNIT_PIECE_MODEL_FILE] = self.unit_piece_model.model_bytes
        written = []
        for name, payload in to_write.items():
            path = os.path.join(str(save_directory), prefix + name)
            _atomic_write(path, payload)
            written.append(path)
        return (*file_names, *written)

    # ------------------------------------------------------------------ vocabulary facts

    @property
    def num_speech_tokens(self) -> int:
        return len(self.speech_token_ids)

    def vocabulary_layout(self) -> dict[str, Any]:
        """The id ranges as plain data, for model configs and logits processors."""
        return {
            "vocab_size": len(self),
            "special_token_range": [self.special_token_ids.start, self.special_token_ids.stop],
            "text_token_range": [self.text_token_ids.start, self.text_token_ids.stop],
            "text_marker_id": self.text_marker_id,
            "speech_marker_id": self.speech_marker_id,
            "speech_token_range": [self.speech_token_ids.start, self.speech_token_ids.stop],
            "pad_token_id": self.pad_token_id,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
        }

    # ------------------------------------------------------------------ encoding

    def __call__(self, text=None, *args, segments=None, **kwargs) -> BatchEncoding:
        """As in transformers, plus `segments=`: one sequence (a list of text / unit segments) or a batch."""
        if segments is None:
            return super().__call__(text, *args, **kwargs)
        if text is not None or args:
            raise ValueError("Pass either text or segments=, not both.")
        return self.encode_segments(segments, **kwargs)

    def encode_segments(
        self,
        segments: Sequence,
        add_special_tokens: bool = True,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | str = False,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        truncation_side: str | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool = True,
        return_modality_mask: bool = True,
    ) -> BatchEncoding:
        """Encode one sequence of segments, or a batch of them.

        A segment is a `str` (text), unit ids (list / numpy / torch, 1-D integers), a `SpeechSegment` (units
        with `[start, end)` word spans in unit frames), or a dict `{"text": ...}` / `{"units": ...,
        "word_spans": ...}`. A batch is a list of such lists. Returns `input_ids`, `attention_mask` and
        `modality_mask` (1 for speech tokens, 0 for text, markers and specials); when any segment has word
        spans, also `word_spans`: per sequence an `(n, 2)` array of `[start, end)` token positions.
        Sequences longer than `max_length` are truncated only when `truncation` is set.
        """
        batched = _is_batch(segments)
        sequences = segments if batched else [segments]
        parsed = [
            parse_segments(seq, self.num_units, index if batched else None) for index, seq in enumerate(sequences)
        ]
        encoded = self._encode_parsed(parsed, add_special_tokens)
        if truncation and truncation != "do_not_truncate":
            if max_length is None:
                raise ValueError("truncation=True needs max_length.")
            side = truncation_side or self.truncation_side
            encoded = [_truncate(item, max_length, side) for item in encoded]
        return self._to_batch_encoding(
            encoded,
            batched=batched,
            padding=padding,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side or self.padding_side,
            return_tensors=return_tensors,
            return_attention_mask=return_attention_mask,
            return_modality_mask=return_modality_mask,
        )

    def _encode_plus(self, text, text_pair=None, add_special_tokens=True, split_special_tokens=None, **kwargs):
        split = self.split_special_tokens if split_special_tokens is None else split_special_tokens
        if not split:
            # The human-readable string form: markers and unit tokens in the text are tokens.
            return super()._encode_plus(
                text, text_pair, add_special_tokens=add_special_tokens, split_special_tokens=False, **kwargs
            )
        unsupported = [
            name
            for name in ("return_offsets_mapping", "return_overflowing_tokens", "is_split_into_words")
            if kwargs.get(name)
        ]
        if text_pair is not None or unsupported:
            raise ValueError(
                f"{['text_pair'] if text_pair is not None else unsupported} is not supported for literal text; "
                "encode segments with tokenizer(segments=...) or pass split_special_tokens=False."
            )
        batched = not isinstance(text, str)
        texts = list(text) if batched else [text]
        padding_strategy = kwargs.get("padding_strategy", PaddingStrategy.DO_NOT_PAD)
        truncation_strategy = kwargs.get("truncation_strategy")
        truncate = truncation_strategy is not None and getattr(truncation_strategy, "value", truncation_strategy) not in (
            "do_not_truncate",
            False,
        )
        return self.encode_segments(
            [[t] for t in texts] if batched else [texts[0]],
            add_special_tokens=add_special_tokens,
            padding=padding_strategy,
            truncation=truncate,
            max_length=kwargs.get("max_length"),
            pad_to_multiple_of=kwargs.get("pad_to_multiple_of"),
            padding_side=kwargs.get("padding_side"),
            return_tensors=kwargs.get("return_tensors"),
            return_attention_mask=kwargs.get("return_attention_mask") is not False,
            return_modality_mask=False,
        )

    def _encode_parsed(self, sequences: list[list[Segment]], add_special_tokens: bool) -> list[dict]:
        texts = [seg for seq in sequences for seg in seq if isinstance(seg, str)]
        speech = [seg for seq in sequences for seg in seq if isinstance(seg, SpeechSegment)]
        text_ids = iter(self._text_encoder.encode_batch(texts))
        speech_encoded = iter(self._encode_speech(speech))

        bos = [self.bos_token_id] if add_special_tokens and self.add_bos_token else []
        eos = [self.eos_token_id] if add_special_tokens and self.add_eos_token else []
        results = []
        for seq_index, sequence in enumerate(sequences):
            parts = [np.asarray(bos, dtype=np.int64)]
            length = len(bos)
            spans = []
            modality = None
            for seg_index, segment in enumerate(sequence):
                is_speech = isinstance(segment, SpeechSegment)
                if is_speech:
                    ids, token_spans = next(speech_encoded)
                else:
                    ids, token_spans = next(text_ids), None
                    if ids.size == 0:
                        raise ValueError(
                            f"sequence {seq_index}, segment {seg_index}: text {segment[:40]!r} encodes to no "
                            "tokens (it is empty after SentencePiece normalisation)."
                        )
                if modality != is_speech:
                    parts.append(np.asarray([self.speech_marker_id if is_speech else self.text_marker_id]))
                    length += 1
                    modality = is_speech
                if token_spans is not None:
                    spans.append(token_spans + length)
                parts.append(ids)
                length += ids.size
            parts.append(np.asarray(eos, dtype=np.int64))
            input_ids = np.concatenate(parts)
            results.append(
                {
                    "input_ids": input_ids,
                    "modality_mask": (input_ids >= self.speech_token_offset).astype(np.int64),
                    "word_spans": np.concatenate(spans) if spans else None,
                }
            )
        return results

    def _encode_speech(self, segments: list[SpeechSegment]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Speech segments to token ids, with their word spans moved from unit frames to token indices."""
        units_list, frame_to_kept = [], []
        for segment in segments:
            units = segment.units
            if self.deduplicate_units:
                units, durations = deduplicate_units(units)
                frame_to_kept.append(np.repeat(np.arange(units.size), durations))
            else:
                frame_to_kept.append(None)
            units_list.append(units)

        if self.unit_piece_model is None:
            token_indices = units_list
            piece_bounds = [None] * len(units_list)
        else:
            token_indices = self.unit_piece_model.encode_batch(units_list)
            piece_bounds = [np.cumsum(self.unit_piece_model.piece_lengths[idx]) for idx in token_indices]

        results = []
        for segment, indices, frame_map, piece_ends in zip(segments, token_indices, frame_to_kept, piece_bounds):
            ids = indices + self.speech_token_offset
            spans = None
            if segment.word_spans is not None:
                starts, last = segment.word_spans[:, 0], segment.word_spans[:, 1] - 1
                if frame_map is not None:
                    starts, last = frame_map[starts], frame_map[last]
                if piece_ends is not None:
                    # A word starts in the piece containing its first unit and ends with the piece
                    # containing its last unit; with pieces, neighbouring words may share a token.
                    starts = np.searchsorted(piece_ends, starts, side="right")
                    last = np.searchsorted(piece_ends, last, side="right")
                spans = np.stack([starts, last + 1], axis=1)
            results.append((ids, spans))
        return results

    def _to_batch_encoding(
        self,
        encoded: list[dict],
        batched: bool,
        padding,
        max_length,
        pad_to_multiple_of,
        padding_side,
        return_tensors,
        return_attention_mask,
        return_modality_mask,
    ) -> BatchEncoding:
        strategy = _padding_strategy(padding)
        lengths = [item["input_ids"].size for item in encoded]
        target = None
        if strategy == PaddingStrategy.LONGEST:
            target = max(lengths)
        elif strategy == PaddingStrategy.MAX_LENGTH:
            if max_length is None:
                raise ValueError("padding='max_length' needs max_length.")
            target = max_length
        if target is not None and pad_to_multiple_of:
            target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
        if return_tensors is not None and target is None and len(set(lengths)) > 1:
            raise ValueError(
                "Sequences have different lengths; pass padding=True (or 'max_length') to return tensors."
            )

        columns: dict[str, list] = {"input_ids": [], "attention_mask": [], "modality_mask": []}
        has_spans = any(item["word_spans"] is not None for item in encoded)
        word_spans = []
        for item, length in zip(encoded, lengths):
            pad = 0 if target is None else max(target - length, 0)
            left = pad if padding_side == "left" else 0
            right = pad - left
            columns["input_ids"].append(np.pad(item["input_ids"], (left, right), constant_values=self.pad_token_id))
            columns["attention_mask"].append(np.pad(np.ones(length, dtype=np.int64), (left, right)))
            columns["modality_mask"].append(np.pad(item["modality_mask"], (left, right)))
            if has_spans:
                spans = item["word_spans"]
                word_spans.append(np.zeros((0, 2), dtype=np.int64) if spans is None else spans + left)

        if not return_attention_mask:
            del columns["attention_mask"]
        if not return_modality_mask:
            del columns["modality_mask"]
        if return_tensors is None:
            data = {k: [v.tolist() for v in vs] if batched else vs[0].tolist() for k, vs in columns.items()}
        else:
            data = {k: np.stack(vs) for k, vs in columns.items()}
        encoding = BatchEncoding(data, tensor_type=return_tensors)
        if has_spans:
            # Ragged, so kept out of tensor conversion.
            encoding["word_spans"] = word_spans if batched else word_spans[0]
        return encoding

    def _pad(self, encoded_inputs, max_length=None, padding_strategy=PaddingStrategy.DO_NOT_PAD,
             pad_to_multiple_of=None, padding_side=None, return_attention_mask=None):
        """`tokenizer.pad` as in transformers, also padding `modality_mask` (with 0)."""
        modality = encoded_inputs.get("modality_mask")
        padded = super()._pad(
            encoded_inputs, max_length, padding_strategy, pad_to_multiple_of, padding_side, return_attention_mask
        )
        if modality is not None:
            missing = len(padded["input_ids"]) - len(modality)
            zeros = [0] * missing
            side = padding_side or self.padding_side
            padded["modality_mask"] = zeros + list(modality) if side == "left" else list(modality) + zeros
        return padded

    # ------------------------------------------------------------------ decoding

    def _decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs):
        """The human-readable string form: text, markers and unit tokens (`[Speech]<u_3><u_17>[Text]hi`)."""
        pieces = []
        for kind, run in self._runs(token_ids):
            if kind == "text":
                pieces.append(self._text_encoder.decode(run.tolist()))
            elif kind == "speech":
                offset = self.speech_token_offset
                pieces.append("".join(self.speech_token_strings[i - offset] for i in run))
            elif not skip_special_tokens:  # markers and specials
                pieces.append("".join(self.convert_ids_to_tokens(run.tolist())))
        return "".join(pieces)

    def decode_segments(self, token_ids) -> list[str | np.ndarray] | list[list[str | np.ndarray]]:
        """Typed segments back from ids: text strings and unit arrays (a list of them per row for 2-D input).

        Markers and specials (BOS, EOS, padding) end a segment and are not returned. Speech comes back as
        units; with unit pieces, as the (deduplicated) unit sequence the pieces stand for.
        """
        array = _ids_to_numpy(token_ids)
        if array.ndim == 2:
            return [self.decode_segments(row) for row in array]
        segments: list[str | np.ndarray] = []
        for kind, run in self._runs(array):
            if kind == "text":
                segments.append(self._text_encoder.decode(run.tolist()))
            elif kind == "speech":
                indices = run - self.speech_token_offset
                units = indices if self.unit_piece_model is None else self.unit_piece_model.decode(indices)
                segments.append(units)
        return segments

    def _runs(self, token_ids):
        """Split ids into maximal runs of one kind: 'text', 'speech', or 'other' (markers and specials)."""
        ids = _ids_to_numpy(token_ids)
        if ids.ndim != 1:
            raise ValueError(f"Expected a 1-D sequence of token ids, got shape {ids.shape}.")
        if ids.size == 0:
            return
        if ids.min() < 0 or ids.max() >= len(self):
            bad = int(np.flatnonzero((ids < 0) | (ids >= len(self)))[0])
            raise ValueError(f"Token id {int(ids[bad])} at position {bad} is outside the vocabulary (0..{len(self) - 1}).")
        kinds = np.full(ids.shape, 2, dtype=np.int8)  # other
        kinds[(ids >= self.text_token_ids.start) & (ids < self.text_token_ids.stop)] = 0
        kinds[ids >= self.speech_token_offset] = 1
        # Markers and specials are singleton runs, so two markers in a row stay apart.
        boundaries = np.flatnonzero((kinds[1:] != kinds[:-1]) | (kinds[1:] == 2)) + 1
        names = ("text", "speech", "other")
        for start, run in zip(np.r_[0, boundaries], np.split(ids, boundaries)):
            yield names[kinds[start]], run


def _saved_bos_eos(tokenizer_file: str | None) -> tuple[bool, bool]:
    """Whether a saved tokenizer.json adds BOS / EOS (a special token before / after the sequence)."""
    if tokenizer_file is None or not os.path.isfile(tokenizer_file):
        return True, False
    with open(tokenizer_file, encoding="utf-8") as handle:
        template = (json.load(handle).get("post_processor") or {}).get("single", [])
    kinds = ["sequence" if "Sequence" in item else "special" for item in template]
    if "sequence" not in kinds:
        return False, False
    where = kinds.index("sequence")
    return "special" in kinds[:where], "special" in kinds[where + 1 :]


def _is_batch(segments: Any) -> bool:
    """A batch is a list of sequences; a sequence is a list of segments (strings, unit arrays, ...)."""
    if isinstance(segments, (str, dict, SpeechSegment)) or not isinstance(segments, (list, tuple)):
        return False
    if not segments:
        raise ValueError("No segments given.")
    return all(isinstance(item, (list, tuple)) and not _looks_like_units(item) for item in segments)


def _ids_to_numpy(token_ids) -> np.ndarray:
    if hasattr(token_ids, "detach"):
        token_ids = token_ids.detach().cpu().numpy()
    return np.asarray(token_ids, dtype=np.int64)


def _padding_strategy(padding) -> PaddingStrategy:
    if isinstance(padding, PaddingStrategy):
        return padding
    if padding is True:
        return PaddingStrategy.LONGEST
    if padding is False or padding is None:
        return PaddingStrategy.DO_NOT_PAD
    return PaddingStrategy(padding)


def _truncate(item: dict, max_length: int, side: str) -> dict:
    length = item["input_ids"].size
    if length <= max_length:
        return item
    start = 0 if side == "right" else length - max_length
    stop = start + max_length
    spans = item["word_spans"]
    if spans is not None:
        spans = np.clip(spans, start, stop) - start
        spans = spans[spans[:, 1] > spans[:, 0]]
    return {
        "input_ids": item["input_ids"][start:stop],
        "modality_mask": item["modality_mask"][start:stop],
        "word_spans": spans,
    }


def _atomic_write(path: str, payload: bytes) -> None:
    directory = os.path.dirname(path) or "."
    with tempfile.NamedTemporaryFile(dir=directory, delete=False, prefix=".tmp-") as handle:
        handle.write(payload)
        temporary = handle.name
    os.replace(temporary, path)


__all__ = ["SpeechUnitTextTokenizer", "SpeechSegment"]
