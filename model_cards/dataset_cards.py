"""Dataset cards for what the package builds: packed pretraining data, spoken corpora and the SLUE stand-in.

Cards are `huggingface_hub` `DatasetCard`s with `DatasetCardData` metadata, so the Hub shows and indexes them
and `datasets.load_dataset` reads their `configs`.
"""

from __future__ import annotations

from huggingface_hub import DatasetCard, DatasetCardData

STAND_IN_SPLITS = ("train", "validation", "test")


def pretraining_data_card(name: str, recipe: dict, statistics: dict, provenance: dict | None = None,
                          data_files: str | None = None) -> DatasetCard:
    """How packed pretraining data was built (the recipe, and for each of its choices whether a paper or this
    package made it) and what it holds (the realised mixture). `data_files` (a glob of Parquet shards) becomes
    the card's `configs`, so `load_dataset(folder)` and the Hub read the shards."""
    configs = None if data_files is None else [{"config_name": "default",
                                                "data_files": [{"split": "train", "path": data_files}]}]
    data = DatasetCardData(tags=["speech", "speech-units", "lst"], pretty_name=name, configs=configs)
    lines = [f"# {name}", "",
             "Joint speech-unit / text pretraining sequences built with the `lst` package (`lst_speech.training.data.pipeline`).",
             "", "## Recipe", ""]
    lines += [f"- **{key}**: {value}" for key, value in recipe.items()]
    if provenance:
        lines += ["", "## Provenance of the recipe's choices", "", "| choice | from |", "|---|---|"]
        lines += [f"| {choice} | {origin} |" for choice, origin in provenance.items()]
    lines += ["", "## Contents", ""]
    lines += [f"- **{key}**: {value}" for key, value in statistics.items()]
    lines += ["", "Columns: `input_ids`, `modality_mask` (1 = speech token), `word_spans`, `silence_spans` and",
              "`piece_spans` (`[start, end)` token positions of spoken words, of the speech around them and of the",
              "text BPE pieces of the words, empty where the source had no character times), `document_starts`.",
              ""]
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def spoken_corpus_card(name: str, facts: dict) -> DatasetCard:
    """A spoken corpus built with espeak-ng (`lst corpus`): where its text came from, how it was spoken and
    turned into units, and what it holds."""
    data = DatasetCardData(language=["en"], tags=["speech", "speech-units", "synthetic", "espeak-ng", "lst"],
                           pretty_name=name, task_categories=["text-to-speech", "automatic-speech-recognition"])
    table = ["| part | source |", "|---|---|",
             f"| text | {facts['text_source']} |",
             "| speech | espeak-ng (voice en-us), word times from its word events, character times from its phoneme "
             "events (letters assigned to phonemes by `lst_speech.tokenization.speech.character_times`) |",
             f"| units | {facts['extractor']} |"]
    lines = [f"# {name}", "", "A spoken corpus built offline with the `lst` package (`lst corpus`): rows `{id, text, "
             "words, units, word_spans, character_starts}`, word spans and character starts in unit frames. Its speech is synthetic.", "", "## Provenance", "",
             *table, "", "## Contents", ""]
    lines += [f"- **{key}**: {value}" for key, value in facts.items() if key not in ("text_source", "extractor")]
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")


def recorded_corpus_card(name: str, facts: dict) -> DatasetCard:
    """A spoken corpus of recorded speech (`lst corpus --audio/--asterisk`): whose voice, under which licence,
    how it was aligned and turned into units, and what was left out. `facts["language"]` (an Asterisk set's) goes
    into the metadata; a folder of recordings names none."""
    language = [facts["language"]] if facts.get("language") else None
    data = DatasetCardData(language=language, tags=["speech", "speech-units", "lst"], pretty_name=name,
                           license=facts.get("license"),
                           task_categories=["text-to-speech", "automatic-speech-recognition"])
    table = ["| part | source |", "|---|---|", f"| speech and text | {facts['source']} |",
             f"| word times | {facts['aligner']} |", f"| units | {facts['extractor']} |"]
    summary = ("A spoken corpus of recorded speech built with the `lst` package (`lst corpus`): rows `{id, text, "
               "words, units, word_spans, character_starts}`, word spans and character starts in unit frames "
               "(character starts null where the aligner times words only).")
    lines = [f"# {name}", "", summary, "", "## Provenance", "", *table, "", "## Contents", ""]
    lines += [f"- **{key}**: {value}" for key, value in facts.items()
              if key not in ("source", "aligner", "extractor", "license", "language")]
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")


def slue_stand_in_card(statistics: dict) -> DatasetCard:
    """The card: provenance, construction, and the realised label and entity counts per split."""
    configs = [{"config_name": config, "data_files": [{"split": split, "path": f"{config}/{split}.parquet"}
                                                      for split in STAND_IN_SPLITS]} for config in ("voxceleb", "voxpopuli")]
    data = DatasetCardData(language=["en"], license="apache-2.0", pretty_name="SLUE stand-in (espeak-ng)",
                           task_categories=["audio-classification", "token-classification"], configs=configs,
                           size_categories=["n<1K"], tags=["synthetic", "slue", "espeak-ng"])
    table = ["| config | split | rows | hours | labels / entities |", "|---|---|---|---|---|"]
    for config in ("voxceleb", "voxpopuli"):
        for split in STAND_IN_SPLITS:
            facts = statistics[config][split]
            counts = ", ".join(f"{k} {v}" for k, v in facts["counts"].items())
            table.append(f"| {config} | {split} | {facts['rows']} | {facts['hours']:.3f} | {counts} |")
    body = f"""---
{data.to_yaml()}
---

# SLUE stand-in (espeak-ng)

A small, synthetic, offline dataset in the schema of [`asapp/slue`](https://huggingface.co/datasets/asapp/slue)
(configs `voxceleb` for sentiment and `voxpopuli` for named entities, splits train / validation / test, audio as
16 kHz WAV bytes), built by `lst slue-stand-in` (`evaluation/slue_stand_in.py`, seed {statistics['seed']}) so that
SLUE fine-tuning and cross-modal transfer can be run and tested where SLUE, which is gated, cannot be fetched.
It is not SLUE: its speech is synthetic, its sentences are templates, and scores on it say nothing about SLUE.

## Construction and provenance

| part | source | licence |
|---|---|---|
| sentiment words | VADER lexicon, shipped in the `vaderSentiment` package (Hutto and Gilbert, 2014) | MIT |
| sentiment labels | VADER's compound score of each whole sentence (>= 0.05 Positive, <= -0.05 Negative) | MIT |
| neutral words, entities | the `Faker` package (en_US word list, names, cities, countries, companies, dates) | MIT |
| word filter | the CMU pronouncing dictionary shipped in `pocketsphinx` | BSD |
| speech | espeak-ng, voices en-us at 150 and 175 words per minute and en at 160 (three "speakers") | GPL-3.0 (tool) |

Sentiment sentences place one or two lexicon words (|valence| >= 1) in ten templates, some negated or mixing
polarities, and keep a draw only when VADER's label of the sentence is the class asked for; a third of the
neutral rows also come from those templates, the rest from six templates filled with non-lexicon words. NER
sentences fill ten templates with Faker entities; `normalized_ner` holds (raw tag, character start, length)
over `normalized_text` (lower case, punctuation removed), `raw_ner` the same over `raw_text`. Raw tags are
PERSON, GPE, ORG and DATE (PERSON, PLACE, ORG and WHEN in SLUE's combined set).

## Realised contents

{chr(10).join(table)}
"""
    return DatasetCard(body)


def unit_shards_card(name: str, index: dict) -> DatasetCard:
    """Units extracted by `lst units extract` into Parquet shards: what made them and what they hold, with a
    `configs` entry so `load_dataset(folder)` or the Hub reads the shards and not the index."""
    data = DatasetCardData(tags=["speech", "speech-units", "lst"], pretty_name=name,
                           configs=[{"config_name": "default", "data_files": [{"split": "train",
                                                                               "path": "units-*.parquet"}]}])
    configuration = index["configuration"]
    lines = [f"# {name}", "", "Discrete speech units extracted with the `lst` package (`lst units extract`), one row "
             "per audio file: `path`, `duration` (seconds), `units`, and where asked `durations` (deduplicated "
             "runs), `words`, `word_spans` and `character_starts` (unit frames).", "", "## Contents", "",
             f"- **files**: {configuration['files']} ({index['rows']} extracted, {len(index['failures'])} failed, "
             "listed in `index.json` with their reasons)",
             f"- **hours of audio**: {index['hours']:.3f}", f"- **shards**: {len(index['shards'])}",
             f"- **deduplicated**: {configuration['deduplicate']}",
             f"- **extractor** (sha256 of its saved files): `{configuration['extractor_sha256']}`", ""]
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))
