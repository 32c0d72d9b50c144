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

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import AddedToken, Tokenizer
from transformers import BatchEncoding
from transformers.tokenization_utils_tokenizers import TokenizersBackend
from transformers.utils import PaddingStrategy

from .segments import Segment, SpeechSegment, looks_like_units, parse_segments, validate_units
from .sentencepiece_text import TextPieceEncoder, TextPieceModel, train_text_sentencepiece
from .tokenizer_files import (
    TEXT_MODEL_FILE,
    UNIT_PIECE_MODEL_FILE,
    check_tokenizer_directory,
    read_json_file,
    reads_as_path,
)
from .unit_pieces import MAX_UNITS, UnitPieceModel

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
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs) -> SpeechUnitTextTokenizer:
        """The library's loading, after checking a local directory's files (named when missing or damaged); a
        path that does not exist is reported as such rather than as a bad repo id."""
        path = os.fspath(pretrained_model_name_or_path)
        directory = os.path.join(path, kwargs["subfolder"]) if kwargs.get("subfolder") else path
        if os.path.isdir(directory):
            check_tokenizer_directory(directory)
        elif reads_as_path(path):
            raise OSError(f"There is no directory {path!r} (it reads as a local path, not an 'org/name' repo id): "
                          "check the path.")
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

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
            parse_segments(seq, index if batched else None) for index, seq in enumerate(sequences)
        ]
        batch = self._encode_parsed(parsed, add_special_tokens)
        if truncation and truncation != "do_not_truncate":
            if max_length is None:
                raise ValueError("truncation=True needs max_length.")
            if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
                raise ValueError(f"max_length must be a positive number of tokens to truncate to, got {max_length!r}.")
            batch = batch.truncated(max_length, truncation_side or self.truncation_side)
        return self._to_batch_encoding(
            batch,
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

    def _encode_parsed(self, sequences: list[list[Segment]], add_special_tokens: bool) -> _FlatBatch:
        """All sequences into one flat id array.

        Text is encoded in one batch call and units in one vectorised pass; the Python loop below only
        computes where each segment, marker and special token lands, and numpy scatters the ids there.
        """
        texts, speech, speech_locations = [], [], []
        for seq_index, sequence in enumerate(sequences):
            for seg_index, segment in enumerate(sequence):
                if type(segment) is str:
                    texts.append(segment)
                else:
                    speech.append(segment)
                    speech_locations.append((seq_index, seg_index))
        text_ids, text_lengths = self._text_encoder.encode_flat(texts)
        speech_ids, speech_lengths, speech_spans = self._encode_speech(speech, speech_locations)
        text_lengths_list, speech_lengths_list = text_lengths.tolist(), speech_lengths.tolist()

        add_bos = add_special_tokens and self.add_bos_token
        add_eos = add_special_tokens and self.add_eos_token
        single_positions, single_ids = [], []  # bos, eos and markers
        text_starts, speech_starts = [], []
        bounds, word_spans = [0], []
        position = next_text = next_speech = 0
        for seq_index, sequence in enumerate(sequences):
            if add_bos:
                single_positions.append(position)
                single_ids.append(self.bos_token_id)
                position += 1
            modality, spans = None, []
            for seg_index, segment in enumerate(sequence):
                is_speech = type(segment) is not str
                if modality is not is_speech:
                    single_positions.append(position)
                    single_ids.append(self.speech_marker_id if is_speech else self.text_marker_id)
                    position += 1
                    modality = is_speech
                if is_speech:
                    if speech_spans[next_speech] is not None:
                        spans.append(speech_spans[next_speech] + (position - bounds[-1]))
                    speech_starts.append(position)
                    position += speech_lengths_list[next_speech]
                    next_speech += 1
                else:
                    if text_lengths_list[next_text] == 0:
                        raise ValueError(
                            f"sequence {seq_index}, segment {seg_index}: text {segment[:40]!r} encodes to no "
                            "tokens (it is empty after SentencePiece normalisation)."
                        )
                    text_starts.append(position)
                    position += text_lengths_list[next_text]
                    next_text += 1
            if add_eos:
                single_positions.append(position)
                single_ids.append(self.eos_token_id)
                position += 1
            bounds.append(position)
            word_spans.append(np.concatenate(spans) if spans else None)

        ids = np.empty(position, dtype=np.int64)
        ids[single_positions] = single_ids
        ids[_scatter_positions(text_starts, text_lengths)] = text_ids
        ids[_scatter_positions(speech_starts, speech_lengths)] = speech_ids
        return _FlatBatch(ids, np.array(bounds), word_spans)

    def _encode_speech(self, segments: list, locations: list[tuple[int, int]]):
        """Speech segments (unit arrays or `SpeechSegment`s) to token ids, vectorised over the batch.

        Returns the ids laid end to end, each segment's token count, and each segment's word spans in
        token indices (None where it had none).
        """
        if not segments:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), []
        unit_arrays = [s.units if type(s) is SpeechSegment else s for s in segments]
        lengths = np.fromiter((a.size for a in unit_arrays), dtype=np.int64, count=len(unit_arrays))
        starts = np.cumsum(lengths) - lengths
        original_starts = starts
        units = np.concatenate(unit_arrays).astype(np.int64, copy=False)
        if units.min() < 0 or units.max() >= self.num_units:
            for unit_array, (seq_index, seg_index) in zip(unit_arrays, locations):
                validate_units(unit_array, self.num_units, f"sequence {seq_index}, segment {seg_index}")

        frame_map = None
        if self.deduplicate_units:
            keep = np.r_[True, units[1:] != units[:-1]]
            keep[starts] = True  # every segment keeps its first unit
            run_index = np.cumsum(keep) - 1  # each frame's run, in the deduplicated array
            units = units[keep]
            starts = run_index[starts]
            frame_map = run_index - np.repeat(starts, lengths)
            lengths = np.diff(np.r_[starts, units.size])

        piece_ends = None
        if self.unit_piece_model is None:
            token_ids = units + self.speech_token_offset
        else:
            pieces = self.unit_piece_model.encode_batch(np.split(units, np.cumsum(lengths)[:-1]))
            piece_ends = [np.cumsum(self.unit_piece_model.piece_lengths[p]) for p in pieces]
            lengths = np.fromiter((p.size for p in pieces), dtype=np.int64, count=len(pieces))
            token_ids = np.concatenate(pieces) + self.speech_token_offset

        spans = [None] * len(segments)
        for index, segment in enumerate(segments):
            if type(segment) is not SpeechSegment or segment.word_spans is None:
                continue
            first, last = segment.word_spans[:, 0], segment.word_spans[:, 1] - 1
            if frame_map is not None:
                first = frame_map[first + original_starts[index]]
                last = frame_map[last + original_starts[index]]
            if piece_ends is not None:
                # A word starts in the piece containing its first unit and ends with the piece
                # containing its last unit; with pieces, neighbouring words may share a token.
                first = np.searchsorted(piece_ends[index], first, side="right")
                last = np.searchsorted(piece_ends[index], last, side="right")
            spans[index] = np.stack([first, last + 1], axis=1)
        return token_ids, lengths, spans

    def _to_batch_encoding(
        self,
        batch: _FlatBatch,
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
        lengths = np.diff(batch.bounds)
        longest = int(lengths.max())
        target = None
        if strategy == PaddingStrategy.LONGEST:
            target = longest
        elif strategy == PaddingStrategy.MAX_LENGTH:
            if max_length is None:
                raise ValueError("padding='max_length' needs max_length.")
            target = max_length
        if target is not None and pad_to_multiple_of:
            target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
        pads = np.zeros_like(lengths) if target is None else np.maximum(target - lengths, 0)
        left = pads if padding_side == "left" else np.zeros_like(pads)

        if return_tensors is None:
            data = self._padded_lists(batch, lengths, pads, padding_side)
        else:
            width = max(longest, target or 0)
            if np.any(lengths + pads != width):
                raise ValueError(
                    "Sequences have different lengths; pass padding=True (or 'max_length' with a max_length "
                    "no shorter than the longest sequence, or truncation=True) to return tensors."
                )
            # A boolean mask fills row-major, i.e. in the flat order of the sequences.
            columns = np.arange(width)
            filled = columns >= left[:, None] if padding_side == "left" else columns < lengths[:, None]
            input_ids = np.full((lengths.size, width), self.pad_token_id, dtype=np.int64)
            input_ids[filled] = batch.ids
            data = {
                "input_ids": input_ids,
                "attention_mask": filled.astype(np.int64),
                "modality_mask": (input_ids >= self.speech_token_offset).astype(np.int64),
            }
        if not return_attention_mask:
            del data["attention_mask"]
        if not return_modality_mask:
            del data["modality_mask"]
        # As in transformers, tensors keep the batch axis even for a single sequence.
        encoding = BatchEncoding(data, tensor_type=return_tensors)
        if any(spans is not None for spans in batch.word_spans):
            # Ragged, so kept out of tensor conversion.
            word_spans = [
                np.zeros((0, 2), dtype=np.int64) if spans is None else spans + shift
                for spans, shift in zip(batch.word_spans, left)
            ]
            encoding["word_spans"] = word_spans if batched else word_spans[0]
        return encoding if batched or return_tensors is not None else _unbatch(encoding)

    def _padded_lists(self, batch: _FlatBatch, lengths, pads, padding_side) -> dict[str, list]:
        # One tolist() for the whole batch, then list slices: per-row numpy calls would dominate.
        ids = batch.ids.tolist()
        speech = (batch.ids >= self.speech_token_offset).astype(np.int64).tolist()
        data = {"input_ids": [], "attention_mask": [], "modality_mask": []}
        for start, stop, pad in zip(batch.bounds[:-1].tolist(), batch.bounds[1:].tolist(), pads.tolist()):
            row_ids, row_speech, ones = ids[start:stop], speech[start:stop], [1] * (stop - start)
            if pad:
                fill_ids, zeros = [self.pad_token_id] * pad, [0] * pad
                if padding_side == "left":
                    row_ids, row_speech, ones = fill_ids + row_ids, zeros + row_speech, zeros + ones
                else:
                    row_ids, row_speech, ones = row_ids + fill_ids, row_speech + zeros, ones + zeros
            data["input_ids"].append(row_ids)
            data["attention_mask"].append(ones)
            data["modality_mask"].append(row_speech)
        return data

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
        """The human-readable string form: text, markers and unit tokens (`[Speech]<u_3><u_17>[Text]hi`).

        Text that itself contains marker or unit-token strings reads back as those tokens when the string
        form is re-encoded; `decode_segments` is the exact inverse of `encode_segments`.
        """
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
    template = (read_json_file(tokenizer_file).get("post_processor") or {}).get("single", [])
    kinds = ["sequence" if "Sequence" in item else "special" for item in template]
    if "sequence" not in kinds:
        return False, False
    where = kinds.index("sequence")
    return "special" in kinds[:where], "special" in kinds[where + 1 :]


def _is_batch(segments: Any) -> bool:
    """A batch is a list of sequences; a sequence is a list of segments (strings, unit arrays, ...).

    Decided on the first element (a list that is not a list of unit ids); each sequence is then
    validated by `parse_segments`.
    """
    if isinstance(segments, (str, dict, SpeechSegment)) or not isinstance(segments, (list, tuple)):
        return False
    if not segments:
        raise ValueError("No segments given.")
    first = segments[0]
    return isinstance(first, (list, tuple)) and not looks_like_units(first)


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


def _scatter_positions(starts: list[int], lengths: np.ndarray) -> np.ndarray:
    """Output positions of runs laid end to end, run i starting at `starts[i]`."""
    lengths = np.asarray(lengths, dtype=np.int64)
    run_offsets = np.cumsum(lengths) - lengths
    return np.repeat(np.asarray(starts, dtype=np.int64) - run_offsets, lengths) + np.arange(int(lengths.sum()))


def _unbatch(encoding: BatchEncoding) -> BatchEncoding:
    return BatchEncoding({key: value[0] if key != "word_spans" else value for key, value in encoding.items()})


@dataclass
class _FlatBatch:
    """Encoded sequences laid end to end: sequence i is `ids[bounds[i]:bounds[i + 1]]`."""

    ids: np.ndarray
    bounds: np.ndarray
    word_spans: list[np.ndarray | None]  # per sequence, token positions within it

    def truncated(self, max_length: int, side: str) -> _FlatBatch:
        """Keep `max_length` tokens of each sequence (the first or the last ones); clip word spans to them."""
        pieces, bounds, word_spans = [], [0], []
        for start, stop, spans in zip(self.bounds[:-1], self.bounds[1:], self.word_spans):
            keep_from = start if side == "right" or stop - start <= max_length else stop - max_length
            keep_to = min(stop, keep_from + max_length)
            pieces.append(self.ids[keep_from:keep_to])
            bounds.append(bounds[-1] + keep_to - keep_from)
            if spans is not None:
                spans = np.clip(spans, keep_from - start, keep_to - start) - (keep_from - start)
                spans = spans[spans[:, 1] > spans[:, 0]]
            word_spans.append(spans)
        return _FlatBatch(np.concatenate(pieces), np.array(bounds), word_spans)


def _atomic_write(path: str, payload: bytes) -> None:
    directory = os.path.dirname(path) or "."
    with tempfile.NamedTemporaryFile(dir=directory, delete=False, prefix=".tmp-") as handle:
        handle.write(payload)
        temporary = handle.name
    os.replace(temporary, path)


__all__ = ["SpeechUnitTextTokenizer", "SpeechSegment"]
