"""The text side of the joint vocabulary: a SentencePiece model, trained here or brought by the user.

Text is encoded by a `tokenizers` pipeline built from the SentencePiece model proto, so that the same
pipeline can be written into `tokenizer.json` and load anywhere `tokenizers` does. transformers'
`SpmConverter` needs a slow-tokenizer object and uses its own whitespace handling rather than the proto's
normalizer flags; we build the equivalent pipeline from the flags directly, and the tests prove it gives
the same ids as `sentencepiece` itself.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import sentencepiece as spm
from tokenizers import Regex, Tokenizer, decoders, normalizers
from tokenizers.models import BPE, Unigram
from transformers.convert_slow_tokenizer import import_protobuf
from transformers.tokenization_utils_base import generate_merges

# SentencePiece ModelProto.SentencePiece.Type values.
_PIECE_NORMAL, _PIECE_UNKNOWN, _PIECE_CONTROL, _PIECE_USER_DEFINED, _PIECE_BYTE = 1, 2, 3, 4, 6
_NON_TEXT_PIECE_TYPES = (_PIECE_CONTROL, _PIECE_UNKNOWN, _PIECE_BYTE)
# TrainerSpec.ModelType values.
_MODEL_UNIGRAM, _MODEL_BPE = 1, 2

# Special pieces of a text model trained by this package, at the start of the id space.
TRAINED_SPECIAL_PIECES = {"pad": "<pad>", "bos": "<s>", "eos": "</s>", "unk": "<unk>"}


@dataclass(frozen=True)
class TextPieceModel:
    """A parsed SentencePiece text model: its serialized bytes and the facts the joint vocabulary needs."""

    model_bytes: bytes = field(repr=False)
    vocab_size: int
    num_leading_specials: int
    pad_piece: str | None
    bos_piece: str | None
    eos_piece: str | None
    unk_piece: str

    @classmethod
    def from_bytes(cls, model_bytes: bytes) -> TextPieceModel:
        proto = _parse_proto(model_bytes)
        trainer = proto.trainer_spec
        pieces = proto.pieces
        if trainer.model_type not in (_MODEL_UNIGRAM, _MODEL_BPE):
            raise ValueError(
                f"SentencePiece model type {trainer.model_type} is not supported: use a unigram or BPE model."
            )

        num_leading_specials = 0
        while num_leading_specials < len(pieces) and pieces[num_leading_specials].type in (
            _PIECE_CONTROL,
            _PIECE_UNKNOWN,
        ):
            num_leading_specials += 1
        misplaced = [
            i for i, p in enumerate(pieces) if p.type in (_PIECE_CONTROL, _PIECE_UNKNOWN) and i >= num_leading_specials
        ]
        if misplaced:
            raise ValueError(
                f"SentencePiece control/unknown pieces must come first in the vocabulary; found them at ids "
                f"{misplaced[:5]}. Retrain the model with pad/bos/eos/unk ids at the start."
            )

        def piece_or_none(piece_id: int) -> str | None:
            return pieces[piece_id].piece if piece_id >= 0 else None

        return cls(
            model_bytes=model_bytes,
            vocab_size=len(pieces),
            num_leading_specials=num_leading_specials,
            pad_piece=piece_or_none(trainer.pad_id),
            bos_piece=piece_or_none(trainer.bos_id),
            eos_piece=piece_or_none(trainer.eos_id),
            unk_piece=pieces[trainer.unk_id].piece,
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TextPieceModel:
        with open(path, "rb") as handle:
            return cls.from_bytes(handle.read())

    def processor(self) -> spm.SentencePieceProcessor:
        """The reference `sentencepiece` processor, for checks and normalisation."""
        return spm.SentencePieceProcessor(model_proto=self.model_bytes)

    def build_tokenizer(self) -> Tokenizer:
        """A `tokenizers.Tokenizer` giving the same ids as `sentencepiece` for any text."""
        proto = _parse_proto(self.model_bytes)
        trainer, norm_spec = proto.trainer_spec, proto.normalizer_spec
        if norm_spec.name not in ("identity", "") and not norm_spec.precompiled_charsmap:
            raise ValueError(f"SentencePiece normalizer {norm_spec.name!r} has no precompiled charsmap to convert.")
        if not norm_spec.escape_whitespaces:
            raise ValueError("SentencePiece models with escape_whitespaces=false are not supported.")

        if trainer.model_type == _MODEL_UNIGRAM:
            vocab_scores = [(p.piece, p.score) for p in proto.pieces]
            model = Unigram(vocab_scores, unk_id=trainer.unk_id, byte_fallback=trainer.byte_fallback)
        else:
            # sentencepiece never produces control, unknown or byte pieces from text, so no merge may
            # build their strings ("<s>" typed by a user is text).
            unreachable = {p.piece for p in proto.pieces if p.type in _NON_TEXT_PIECE_TYPES}
            vocab = {p.piece: i for i, p in enumerate(proto.pieces)}
            model = BPE(
                vocab,
                generate_merges(vocab, skip_tokens=unreachable),
                unk_token=proto.pieces[trainer.unk_id].piece,
                fuse_unk=True,
                byte_fallback=trainer.byte_fallback,
            )
        tokenizer = Tokenizer(model)

        # Mirror sentencepiece's normalizer: charsmap, whitespace clean-up, escape, dummy prefix. No
        # pre-tokenizer: sentencepiece encodes the whole normalized string, and models with pieces such
        # as "▁▁" (Llama-2) would tokenize differently if we split on whitespace first.
        steps = []
        if norm_spec.precompiled_charsmap:
            steps.append(normalizers.Precompiled(norm_spec.precompiled_charsmap))
        if norm_spec.remove_extra_whitespaces:
            steps += [normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), " ")]
        steps.append(normalizers.Replace(" ", "▁"))
        if norm_spec.add_dummy_prefix:
            steps.append(normalizers.Prepend("▁"))
        tokenizer.normalizer = normalizers.Sequence(steps)

        decode_steps = [decoders.Replace("▁", " ")]
        if trainer.byte_fallback:
            decode_steps += [decoders.ByteFallback(), decoders.Fuse()]
        if norm_spec.add_dummy_prefix:
            decode_steps.append(decoders.Strip(" ", 1, 0))
        tokenizer.decoder = decoders.Sequence(decode_steps)
        return tokenizer


class TextPieceEncoder:
    """Encodes text to SentencePiece ids with the fast `tokenizers` pipeline, exactly as `sentencepiece` does.

    The pipeline matches `sentencepiece` except on one point: its models can match the strings of control,
    unknown and byte pieces (a user typing "<s>" or "<0x41>"), which `sentencepiece` never does. Any text
    whose fast encoding contains such a piece, which also covers genuine byte fallback, is encoded again by
    `sentencepiece` itself. Such texts are rare, so the fast path carries the load.
    """

    def __init__(self, model: TextPieceModel):
        self.pipeline = model.build_tokenizer()
        self._reference = model.processor()
        proto = _parse_proto(model.model_bytes)
        self._is_non_text_piece = np.array([p.type in _NON_TEXT_PIECE_TYPES for p in proto.pieces])

    def encode_flat(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """All texts' ids laid end to end, and each text's length (the layout the joint tokenizer scatters)."""
        encodings = self.pipeline.encode_batch(texts, add_special_tokens=False)
        lengths = np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(encodings))
        ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=int(lengths.sum()))
        suspicious = self._is_non_text_piece[ids]
        if not suspicious.any():
            return ids, lengths
        per_text = np.split(ids, np.cumsum(lengths)[:-1])
        for index in np.unique(np.repeat(np.arange(len(texts)), lengths)[suspicious]):
            per_text[index] = np.asarray(self._reference.encode(texts[index]), dtype=np.int64)
        lengths = np.fromiter((a.size for a in per_text), dtype=np.int64, count=len(per_text))
        return np.concatenate(per_text), lengths

    def encode(self, text: str) -> np.ndarray:
        return self.encode_flat([text])[0]

    def decode(self, ids: list[int]) -> str:
        return self.pipeline.decode(ids, skip_special_tokens=False)


def train_text_sentencepiece(
    texts: Iterable[str],
    vocab_size: int = 8000,
    model_type: str = "unigram",
    byte_fallback: bool = True,
    character_coverage: float = 1.0,
    **trainer_kwargs,
) -> TextPieceModel:
    """Train a text SentencePiece model with pad/bos/eos/unk at ids 0-3 (the joint vocabulary's specials).

    `byte_fallback` keeps every string encodable (no `<unk>`), at the cost of 256 byte pieces.
    Extra keyword arguments go to `sentencepiece.SentencePieceTrainer.train`.
    """
    if model_type not in ("unigram", "bpe"):
        raise ValueError(f"model_type must be 'unigram' or 'bpe', got {model_type!r}.")
    sentences = (text for text in texts if text and not text.isspace())
    model_writer = io.BytesIO()
    options = dict(
        sentence_iterator=sentences,
        model_writer=model_writer,
        vocab_size=vocab_size,
        model_type=model_type,
        pad_id=0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        pad_piece=TRAINED_SPECIAL_PIECES["pad"],
        bos_piece=TRAINED_SPECIAL_PIECES["bos"],
        eos_piece=TRAINED_SPECIAL_PIECES["eos"],
        unk_piece=TRAINED_SPECIAL_PIECES["unk"],
        byte_fallback=byte_fallback,
        character_coverage=character_coverage,
        minloglevel=2,
    )
    options.update(trainer_kwargs)
    try:
        spm.SentencePieceTrainer.train(**options)
    except RuntimeError as error:
        raise ValueError(f"SentencePiece training of the text model failed: {error}") from error
    return TextPieceModel.from_bytes(model_writer.getvalue())


def _parse_proto(model_bytes: bytes):
    proto = import_protobuf().ModelProto()
    try:
        proto.ParseFromString(model_bytes)
    except Exception as error:  # protobuf raises its own DecodeError type
        raise ValueError(f"Not a SentencePiece model file: {error}") from error
    if not proto.pieces:
        raise ValueError("Not a SentencePiece model file: it has no pieces.")
    return proto


__all__ = ["TextPieceEncoder", "TextPieceModel", "train_text_sentencepiece"]
