"""An offline SLUE-shaped stand-in, spoken by espeak-ng: sentiment in the `voxceleb` schema, NER in `voxpopuli`.

    lst slue-stand-in --output_dir slue-stand-in [--train 600 --validation 150 --test 150 --seed 0]

SLUE is gated on the Hub, so tests and the README's transfer table run on this instead; real SLUE loads
through the same code. Sentiment sentences place words of the VADER lexicon (shipped in `vaderSentiment`)
in varied templates, some negated or with two words of either polarity, and take their label from VADER's
own compound score of the whole sentence (>= 0.05 Positive, <= -0.05 Negative, else Neutral, its authors'
thresholds); neutral sentences are templates with words outside the lexicon. NER sentences fill templates
with Faker's names, cities, countries, companies and dates, tagged PERSON, GPE, ORG and DATE (PERSON,
PLACE, ORG and WHEN in SLUE's combined set). Only words in pocketsphinx's CMU dictionary are drawn from the
lexicon, so that espeak-ng reads real words. Audio is stored as 16 kHz 16-bit WAV bytes, as the Hub's parquet
does, with three espeak voices as speakers.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import soundfile
from tqdm.auto import tqdm

from lst_speech.model_cards.dataset_cards import STAND_IN_SPLITS as SPLITS
from lst_speech.model_cards.dataset_cards import slue_stand_in_card
from lst_speech.tokenization.atomic_files import atomic_directory
from lst_speech.tokenization.speech.audio import prepare_waveform
from lst_speech.tokenization.speech.espeak import EspeakSynthesizer

logger = logging.getLogger(__name__)
SAMPLING_RATE = 16000
SPEAKERS = (("en-us", 150), ("en-us", 175), ("en", 160))  # (espeak voice, words per minute)

SENTIMENT_TEMPLATES = (
    "i thought the film was {0}", "honestly the whole evening felt {0}", "the one word i would use is {0}",
    "what a {0} way to spend the weekend", "my first reaction was {0} and then {1}",
    "i would not call it {0}", "it was {0} but also a little {1}", "the interview left me feeling {0}",
    "people kept saying the show was {0}", "to be fair the ending was {0}",
)
NEUTRAL_TEMPLATES = (
    "we talked about the {0} for a while", "the {0} is next to the {1}", "she moved the {0} on tuesday",
    "they will discuss the {0} after the {1}", "he read about the {0} this morning",
    "the meeting covered the {0} and the {1}",
)
NER_TEMPLATES = (
    "{PERSON} visited {GPE} on {DATE}", "the board of {ORG} met in {GPE}",
    "{PERSON} from {ORG} spoke to the parliament on {DATE}", "we thank {PERSON} for the report on {GPE}",
    "on {DATE} {ORG} opened an office in {GPE}", "the commission asked {PERSON} about {ORG}",
    "there was no statement from {GPE} this week", "i agree with {PERSON} on this point",
    "the vote on {DATE} was postponed", "{ORG} and {ORG} signed the agreement in {GPE}",
)
ORDINALS = ("first", "second", "third", "fourth", "fifth", "tenth", "twelfth", "fifteenth", "twentieth")


def normalise(text: str) -> str:
    """SLUE's normalised form: lower case, words of letters, digits and apostrophes, single spaces."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def _dictionary() -> set[str]:
    import pocketsphinx

    path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    return {line.split(maxsplit=1)[0] for line in path.read_text(encoding="utf-8").splitlines() if line}


class SentimentSentences:
    """Sentences with VADER-graded sentiment, and the VADER label of each."""

    def __init__(self, rng: np.random.Generator):
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.rng, self.analyzer = rng, SentimentIntensityAnalyzer()
        words = _dictionary()
        lexicon = {w: v for w, v in self.analyzer.lexicon.items() if w.isalpha() and 3 <= len(w) <= 12 and w in words}
        self.positive = sorted(w for w, v in lexicon.items() if v >= 1.0)
        self.negative = sorted(w for w, v in lexicon.items() if v <= -1.0)
        from faker import Faker

        self.neutral = sorted({w for w in Faker("en_US").get_words_list() if w in words and w not in self.analyzer.lexicon
                               and len(w) >= 4})

    def label(self, text: str) -> str:
        compound = self.analyzer.polarity_scores(text)["compound"]
        return "Positive" if compound >= 0.05 else "Negative" if compound <= -0.05 else "Neutral"

    def draw(self, target: str) -> str:
        """A sentence whose VADER label is `target` (drawn until one is: negation and mixed words grade it)."""
        while True:
            if target == "Neutral" and self.rng.random() < 0.7:
                text = self.rng.choice(NEUTRAL_TEMPLATES).format(*self.rng.choice(self.neutral, 2, replace=False))
            else:
                pools = [self.positive, self.negative]
                first = self.positive if target == "Positive" else self.negative if target == "Negative" else \
                    pools[int(self.rng.integers(2))]
                second = pools[int(self.rng.integers(2))]
                text = self.rng.choice(SENTIMENT_TEMPLATES).format(self.rng.choice(first), self.rng.choice(second))
            if self.label(text) == target:
                return text


class EntitySentences:
    """Sentences with Faker's entities and their spans `(raw tag, start, length)` over the normalised text."""

    def __init__(self, seed: int):
        from faker import Faker

        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)

    def entity(self, tag: str) -> str:
        fake = self.fake
        if tag == "PERSON":
            return fake.name()
        if tag == "GPE":
            return fake.city() if fake.pybool() else fake.country()
        if tag == "ORG":
            return fake.company()
        kind = fake.random_int(0, 2)
        return fake.day_of_week() if kind == 0 else fake.month_name() if kind == 1 else \
            f"the {fake.random_element(ORDINALS)} of {fake.month_name()}"

    def draw(self) -> tuple[str, str, list[tuple[str, int, int]], list[tuple[str, int, int]]]:
        """(raw text, normalised text, raw spans, normalised spans)."""
        template = self.fake.random_element(NER_TEMPLATES)
        raw, normalised, raw_spans, spans = "", "", [], []
        for literal, tag in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
            raw += literal
            normalised = (normalised + " " + normalise(literal)).strip() if normalise(literal) else normalised
            if not tag:
                continue
            value = self.entity(tag)
            words = normalise(value)
            if not words:
                continue
            raw_spans.append((tag, len(raw), len(value)))
            raw += value
            start = len(normalised) + (1 if normalised else 0)
            normalised = (normalised + " " + words).strip()
            spans.append((tag, start, len(words)))
        return raw, normalised, raw_spans, spans


def _audio(synthesizer: EspeakSynthesizer, text: str, name: str) -> tuple[dict, float]:
    speech = synthesizer.synthesize(text)
    waveform = prepare_waveform(speech.waveform, speech.sampling_rate, SAMPLING_RATE, name)
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, SAMPLING_RATE, format="WAV", subtype="PCM_16")
    return {"bytes": buffer.getvalue(), "path": f"{name}.wav"}, waveform.size / SAMPLING_RATE


def _spans(spans) -> dict:
    return {"type": [t for t, _, _ in spans], "start": [s for _, s, _ in spans], "length": [n for _, _, n in spans]}


AUDIO = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
SPANS = {"type": datasets.List(datasets.Value("string")), "start": datasets.List(datasets.Value("int32")),
         "length": datasets.List(datasets.Value("int32"))}
FEATURES = {
    "voxceleb": datasets.Features({"index": datasets.Value("int32"), "id": datasets.Value("string"), "audio": AUDIO,
                                   "speaker_id": datasets.Value("string"), "normalized_text": datasets.Value("string"),
                                   "sentiment": datasets.Value("string"), "start_second": datasets.Value("float64"),
                                   "end_second": datasets.Value("float64")}),
    "voxpopuli": datasets.Features({"id": datasets.Value("string"), "audio": AUDIO,
                                    "speaker_id": datasets.Value("string"), "raw_text": datasets.Value("string"),
                                    "normalized_text": datasets.Value("string"), "raw_ner": SPANS,
                                    "normalized_ner": SPANS}),
}


def build_slue_stand_in(output_dir: str | os.PathLike, sizes: dict[str, int] | None = None, seed: int = 0,
                        progress: bool = True) -> dict:
    """Write `output_dir/{voxceleb,voxpopuli}/{train,validation,test}.parquet` and a dataset card (README.md)
    that `datasets.load_dataset(output_dir, "voxceleb")` reads like `asapp/slue`. Returns the statistics the
    card reports (rows, label and entity counts, hours). The folder is built beside `output_dir` and renamed
    into place whole, replacing only an earlier stand-in."""
    with atomic_directory(output_dir, "lst slue-stand-in") as partial:
        return _write_stand_in(partial, sizes or {"train": 600, "validation": 150, "test": 150}, seed, progress)


def _write_stand_in(output_dir: Path, sizes: dict[str, int], seed: int, progress: bool) -> dict:
    synthesizers = [EspeakSynthesizer(voice, rate) for voice, rate in SPEAKERS]
    rng = np.random.default_rng(seed)
    sentiment, entities = SentimentSentences(rng), EntitySentences(seed)
    statistics = {"seed": seed, "sizes": sizes, "voxceleb": {}, "voxpopuli": {}}
    for split in SPLITS:
        rows, ner_rows, seconds = [], [], {"voxceleb": 0.0, "voxpopuli": 0.0}
        for index in tqdm(range(sizes[split]), desc=f"speaking {split}", disable=not progress, unit="utt"):
            speaker = index % len(SPEAKERS)
            label = ("Negative", "Neutral", "Positive")[int(rng.integers(3))]
            text = sentiment.draw(label)
            audio, duration = _audio(synthesizers[speaker], text, f"sa-{split}-{index:05d}")
            seconds["voxceleb"] += duration
            rows.append({"index": index, "id": f"sa-{split}-{index:05d}", "audio": audio,
                         "speaker_id": f"espeak-{speaker}", "normalized_text": text, "sentiment": label,
                         "start_second": 0.0, "end_second": duration})
            raw, normalised, raw_spans, spans = entities.draw()
            audio, duration = _audio(synthesizers[speaker], normalised, f"ner-{split}-{index:05d}")
            seconds["voxpopuli"] += duration
            ner_rows.append({"id": f"ner-{split}-{index:05d}", "audio": audio, "speaker_id": f"espeak-{speaker}",
                             "raw_text": raw, "normalized_text": normalised, "raw_ner": _spans(raw_spans),
                             "normalized_ner": _spans(spans)})
        for config, config_rows in (("voxceleb", rows), ("voxpopuli", ner_rows)):
            (output_dir / config).mkdir(parents=True, exist_ok=True)
            dataset = datasets.Dataset.from_list(config_rows, features=FEATURES[config])
            dataset = dataset.cast_column("audio", datasets.Audio(sampling_rate=SAMPLING_RATE, decode=False))
            dataset.to_parquet(output_dir / config / f"{split}.parquet")
            counts = Counter(r["sentiment"] for r in config_rows) if config == "voxceleb" else \
                Counter(t for r in config_rows for t in r["normalized_ner"]["type"])
            statistics[config][split] = {"rows": len(config_rows), "hours": seconds[config] / 3600,
                                         "counts": dict(sorted(counts.items()))}
    (output_dir / "stand_in.json").write_text(json.dumps(statistics, indent=2) + "\n")
    slue_stand_in_card(statistics).save(output_dir / "README.md")
    return statistics
