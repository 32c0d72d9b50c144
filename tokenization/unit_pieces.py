"""Speech-unit preprocessing for the joint vocabulary: deduplication and SentencePiece over units (SUTLM).

SUTLM trains SentencePiece on (deduplicated) unit sequences so that one speech token covers several
units. Units are mapped to private-use characters (one code point each, so a unit sequence is a string
without spaces), and `sentencepiece` learns BPE or unigram pieces over them. Every unit is forced into
the vocabulary as a single-character piece, so any unit sequence is encodable.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import numpy as np
import sentencepiece as spm

# Units live in Supplementary Private Use Area-A: 65,534 code points, none of them touched by any
# normalisation, and none of them text.
_UNIT_CODEPOINT_BASE = 0xF0000
MAX_UNITS = 65534


def deduplicate_units(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Collapse runs of a repeated unit: returns the deduplicated units and each run's length."""
    units = np.asarray(units)
    if units.size == 0:
        return units.copy(), np.zeros(0, dtype=np.int64)
    run_starts = np.flatnonzero(np.r_[True, units[1:] != units[:-1]])
    durations = np.diff(np.r_[run_starts, units.size])
    return units[run_starts], durations


def units_to_string(units: np.ndarray) -> str:
    """Map unit ids to one private-use character each (vectorised, no per-unit Python work)."""
    codepoints = np.asarray(units, dtype=np.uint32) + _UNIT_CODEPOINT_BASE
    return codepoints.astype("<u4").tobytes().decode("utf-32-le")


def string_to_units(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64) - _UNIT_CODEPOINT_BASE


class UnitPieceModel:
    """SentencePiece pieces over unit sequences; piece `i` (0-based, `<unk>` excluded) is speech token `i`."""

    def __init__(self, model_bytes: bytes, num_units: int):
        self.model_bytes = model_bytes
        self.num_units = num_units
        self._processor = spm.SentencePieceProcessor(model_proto=model_bytes)
        if self._processor.unk_id() != 0 or any(
            self._processor.is_control(i) for i in range(self._processor.get_piece_size())
        ):
            raise ValueError(
                "A unit-piece model must have <unk> at id 0 and no control pieces; train it with "
                "UnitPieceModel.train."
            )
        # Piece id p >= 1 is speech token p - 1; its units, for decoding.
        self.piece_units: list[np.ndarray] = [
            string_to_units(self._processor.id_to_piece(piece_id))
            for piece_id in range(1, self._processor.get_piece_size())
        ]
        self.piece_lengths = np.array([len(u) for u in self.piece_units], dtype=np.int64)
        single_unit_pieces = {int(u[0]) for u in self.piece_units if len(u) == 1}
        outside = sorted(
            {int(u) for piece in self.piece_units for u in piece if not 0 <= u < num_units}
        )
        missing = sorted(set(range(num_units)) - single_unit_pieces)
        if outside or missing:
            problem = (
                f"pieces contain units {outside[:10]} outside 0..{num_units - 1}"
                if outside
                else f"units {missing[:10]} have no single-unit piece"
            )
            raise ValueError(
                f"The unit-piece model does not match num_units={num_units}: {problem}. Train the unit-piece "
                f"model with the same number of units as the tokenizer."
            )

    @property
    def num_pieces(self) -> int:
        return len(self.piece_units)

    @classmethod
    def train(
        cls,
        unit_sequences: Iterable[np.ndarray],
        num_units: int,
        vocab_size: int = 10000,
        model_type: str = "bpe",
        deduplicate: bool = True,
        **trainer_kwargs,
    ) -> UnitPieceModel:
        """Train pieces over unit sequences (SUTLM used 1k, 10k and 32k; BPE or unigram).

        `vocab_size` counts pieces, including the `num_units` single-unit ones. With `deduplicate`, runs of a
        repeated unit are collapsed before training, as the tokenizer will do before encoding.
        """
        if not 0 < num_units <= MAX_UNITS:
            raise ValueError(f"num_units must be in 1..{MAX_UNITS}, got {num_units}.")
        if vocab_size <= num_units:
            raise ValueError(f"vocab_size ({vocab_size}) must exceed num_units ({num_units}) to learn any piece.")
        if model_type not in ("bpe", "unigram"):
            raise ValueError(f"model_type must be 'bpe' or 'unigram', got {model_type!r}.")

        longest = 0
        bad_input: list[ValueError] = []  # sentencepiece < 0.2.3 swallows an iterator's exception: keep it here

        def sentences():
            nonlocal longest
            for index, units in enumerate(unit_sequences):
                units = np.asarray(units)
                if units.size and (units.min() < 0 or units.max() >= num_units):
                    bad_input.append(ValueError(f"Unit sequence {index} has units outside 0..{num_units - 1}."))
                    raise bad_input[-1]
                if deduplicate:
                    units, _ = deduplicate_units(units)
                longest = max(longest, units.size)
                if units.size:
                    yield units_to_string(units)

        def sentences_with_every_unit():
            # sentencepiece's BPE trainer drops characters absent from the data (required_chars does
            # not help there); one single-unit sentence per unit puts every unit in the vocabulary
            # without adding any unit pair to learn merges from.
            yield from sentences()
            yield from (units_to_string(np.array([unit])) for unit in range(num_units))

        model_writer = io.BytesIO()
        options = dict(
            sentence_iterator=sentences_with_every_unit(),
            model_writer=model_writer,
            vocab_size=vocab_size + 1,  # + <unk>
            model_type=model_type,
            unk_id=0,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            character_coverage=1.0,
            normalization_rule_name="identity",
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            split_by_unicode_script=False,
            split_by_number=False,
            split_by_whitespace=False,
            max_sentence_length=1 << 20,
            minloglevel=2,
        )
        options.update(trainer_kwargs)
        try:
            spm.SentencePieceTrainer.train(**options)
        except RuntimeError as error:
            if bad_input:
                raise bad_input[0] from error
            raise ValueError(
                f"SentencePiece training over units failed (longest sequence {longest} units): {error}"
            ) from error
        return cls(model_writer.getvalue(), num_units)

    def encode_batch(self, unit_sequences: list[np.ndarray]) -> list[np.ndarray]:
        """Unit sequences (already deduplicated if the tokenizer deduplicates) to speech-token indices."""
        encoded = self._processor.encode([units_to_string(u) for u in unit_sequences])
        return [np.asarray(pieces, dtype=np.int64) - 1 for pieces in encoded]

    def decode(self, speech_indices: np.ndarray) -> np.ndarray:
        if len(speech_indices) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self.piece_units[i] for i in speech_indices])
