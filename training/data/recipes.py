"""The papers' data recipes as presets, and the one call that turns sources into packed training data.

`RECIPES["sutlm"]` and `RECIPES["lst"]` hold every choice; `PROVENANCE` says which come from the papers and
which are ours (the README prints the same table). `build_pretraining_data` formats the sources, mixes
them by source shares (or by a speech:text token ratio) and packs the result.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from lst_speech.training.data.formats import FORMATS, AstConfig, InterleaveConfig, SpanSampler
from lst_speech.training.data.mixing import check_weights, mix, token_ratio_weights
from lst_speech.training.data.packing import PACK_UNITS, pack
from lst_speech.training.data.pipeline import build_format

SOURCE_FORMATS = {"speech": "ulm", "text": "tlm"}  # paired sources are rendered in `paired_formats`
SOURCE_KINDS = ("speech", "paired", "text")
PAIRED_FORMATS = tuple(f for f in FORMATS if f not in SOURCE_FORMATS.values())


@dataclass
class DataRecipe:
    name: str
    source_weights: dict[str, float]  # shares of "speech" (uLM), "paired" and "text" (tLM) examples
    paired_formats: dict[str, float]  # how paired rows are rendered, as shares of the paired examples
    ast: AstConfig = field(default_factory=lambda: AstConfig(SpanSampler()))
    interleave: InterleaveConfig = field(default_factory=InterleaveConfig)
    speech_per_text: float | None = None  # if set, source weights are tilted to hit this token ratio
    deduplicate_units: bool = False  # a tokenizer setting; recorded so the card and the model agree
    unit_pieces: bool = False  # likewise: SentencePiece over units
    pack_unit: str = "tokens"
    sequence_length: int = 2048
    patch_size: int = 4

    def __post_init__(self):
        """Checked when built (and on every `replace`), before any data is touched."""
        where = f"Recipe {self.name!r}"
        check_weights(self.source_weights, f"{where}: source_weights", allowed=SOURCE_KINDS)
        if self.source_weights.get("paired", 0) > 0:
            check_weights(self.paired_formats, f"{where}: paired_formats", allowed=PAIRED_FORMATS)
        if self.pack_unit not in PACK_UNITS:
            raise ValueError(f"{where}: pack_unit must be one of {PACK_UNITS}, got {self.pack_unit!r}.")
        for name in ("sequence_length", "patch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{where}: {name} must be a positive integer, got {getattr(self, name)!r}.")
        ratio = self.speech_per_text
        if ratio is not None and not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio > 0):
            raise ValueError(f"{where}: speech_per_text must be a positive ratio (e.g. 0.5 for 1:2), got "
                             f"{self.speech_per_text!r}.")

    def weights(self) -> dict[str, float]:
        """Example shares of each formatted source: paired shares split over the paired formats."""
        weights = {k: v for k, v in self.source_weights.items() if k != "paired"}
        paired_total = sum(self.paired_formats.values())
        for format, share in self.paired_formats.items():
            weights[f"paired/{format}"] = self.source_weights.get("paired", 0.0) * share / paired_total
        return {k: v for k, v in weights.items() if v > 0}

    def replace(self, **changes) -> DataRecipe:
        return dataclasses.replace(self, **changes)


RECIPES = {
    "sutlm": DataRecipe(
        name="sutlm",
        source_weights={"speech": 1 / 3, "paired": 1 / 3, "text": 1 / 3},
        paired_formats={"cst_speech_text": 0.25, "cst_text_speech": 0.25, "ast": 0.5},
        ast=AstConfig(SpanSampler("poisson", length=10.0), speech_fraction=0.5),
        deduplicate_units=True,
        unit_pieces=True,
        pack_unit="tokens",
        sequence_length=2048,
    ),
    "lst": DataRecipe(
        name="lst",
        source_weights={"paired": 1 / 3, "text": 2 / 3},
        paired_formats={"interleave": 1.0},
        interleave=InterleaveConfig(min_text_words=5, max_text_words=30, max_text_fraction=0.6, speech_per_text=0.5),
        deduplicate_units=False,
        pack_unit="patches",
        sequence_length=4096,
        patch_size=4,
    ),
}

# Where each preset value comes from: "paper" (the paper or its released code, see shared/research) or
# "ours" (an assumption where the paper is silent or unverified).
PROVENANCE = {
    "sutlm": {
        "source_weights (1/3 speech, paired, text)": "paper",
        "paired formats: CST both orders and AST": "paper",
        "split of paired data (1/4, 1/4, 1/2)": "ours",
        "AST spans Poisson(10 words), half the words spoken": "ours (not verified in the paper)",
        "deduplicated units + SentencePiece over units": "paper",
        "2048-token sequences": "ours (not verified)",
    },
    "lst": {
        "source_weights (1/3 interleaved, 2/3 text)": "paper",
        "interleaving: random start, text U[5,30] words <= 0.6 of doc, speech = 0.5 x previous text": "paper",
        "blocks resampled every epoch": "paper",
        "units not deduplicated": "paper",
        "packing 4096 global positions (patches), static patch size 4": "paper",
    },
}


def build_pretraining_data(recipe: DataRecipe, tokenizer, speech=None, paired=None, text=None, seed: int = 0,
                           epoch: int = 0, num_proc: int | None = None, pack_sequences: bool = True,
                           piece_timing: str = "characters"):
    """Format, mix and pack. Returns `(dataset, weights)`: packed rows (or mixed documents, if
    `pack_sequences` is False) and the source weights used. `piece_timing` as in `build_format`."""
    has_pieces = tokenizer.unit_piece_model is not None
    if tokenizer.deduplicate_units != recipe.deduplicate_units or has_pieces != recipe.unit_pieces:
        raise ValueError(
            f"The {recipe.name!r} recipe expects a tokenizer with deduplicate_units={recipe.deduplicate_units} and "
            f"unit pieces {'on' if recipe.unit_pieces else 'off'}; this one has {tokenizer.deduplicate_units} and "
            f"{'on' if has_pieces else 'off'}. Train a matching tokenizer or recipe.replace(...) the recipe."
        )
    given = {"speech": speech, "paired": paired, "text": text}
    sources = {}
    for name, weight in recipe.weights().items():
        kind, _, format = name.partition("/")
        if given[kind] is None:
            raise ValueError(f"The {recipe.name!r} recipe draws {weight:.0%} of its examples from {kind!r} data; pass {kind}=.")
        sources[name] = build_format(given[kind], tokenizer, format or SOURCE_FORMATS[kind], seed=seed, epoch=epoch,
                                     ast=recipe.ast, interleave=recipe.interleave, num_proc=num_proc,
                                     piece_timing=piece_timing)
    weights = recipe.weights()
    if recipe.speech_per_text is not None:
        weights = token_ratio_weights(sources, tokenizer, recipe.speech_per_text, base_weights=weights)
    mixed = mix(sources, weights, seed=seed)
    if not pack_sequences:
        return mixed, weights
    return pack_with_recipe(mixed, recipe, num_proc), weights


def pack_with_recipe(documents, recipe: DataRecipe, num_proc: int | None = None):
    """Packed sequences of the recipe's length and unit, from mixed documents (to pack what was already
    mixed and measured, rather than building the formats again)."""
    return pack(documents, recipe.sequence_length, recipe.pack_unit, recipe.patch_size, num_proc=num_proc)
