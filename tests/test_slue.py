"""SLUE loaders on small local fixtures in the asapp/slue schema."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lst_speech.evaluation.slue.data import load_slue, ner_examples, sentiment_examples, slue_ner_format

VOXCELEB = [
    {"index": 0, "id": "id10059_229vKIGbxrI_00001", "speaker_id": "id10059", "normalized_text": "i love this film",
     "sentiment": "Positive", "start_second": 0.0, "end_second": 2.1, "local_path": None},
    {"index": 1, "id": "id10059_229vKIGbxrI_00002", "speaker_id": "id10059", "normalized_text": "it was fine i guess",
     "sentiment": "Neutral", "start_second": 2.1, "end_second": 4.0, "local_path": None},
    {"index": 2, "id": "id10060_abc_00001", "speaker_id": "id10060", "normalized_text": "well yes and no",
     "sentiment": "<mixed>", "start_second": 0.0, "end_second": 1.5, "local_path": None},
]
VOXPOPULI = [
    {"id": "20130115-0900-PLENARY-8-en_20130115-13:40:52_6", "normalized_text":
     "the european parliament met in strasbourg on tuesday",
     "normalized_ner": [["ORG", 4, 19], ["GPE", 31, 10], ["DATE", 45, 7]]},
    {"id": "20130115-0900-PLENARY-8-en_20130115-13:41:10_2", "normalized_text": "thank you very much",
     "normalized_ner": []},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_sentiment_rows_and_reported_other_labels(tmp_path):
    dataset = load_slue("voxceleb", data_files=write_jsonl(tmp_path / "voxceleb.jsonl", VOXCELEB))
    kept, other = sentiment_examples(dataset)
    assert [(r["text"], r["label"]) for r in kept] == [("i love this film", "Positive"), ("it was fine i guess", "Neutral")]
    assert other == Counter({"<mixed>": 1})


def test_ner_rows_become_tagged_targets(tmp_path):
    dataset = load_slue("voxpopuli", data_files=write_jsonl(tmp_path / "voxpopuli.jsonl", VOXPOPULI))
    examples = ner_examples(dataset)
    # Raw tag characters in both label sets: the only ones SLUE's scorer reads.
    assert examples[0]["tagged"] == "the ` european parliament ] met in % strasbourg ] on @ tuesday ]"
    assert examples[1]["tagged"] == "thank you very much"
    assert ner_examples(dataset, "raw")[0]["tagged"] == examples[0]["tagged"]
    assert slue_ner_format().parse_tagged_text(examples[0]["tagged"]) == [
        ("ORG", "european parliament"), ("PLACE", "strasbourg"), ("WHEN", "tuesday")]


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="lacks the columns \\['sentiment'\\]"):
        load_slue("voxceleb", data_files=write_jsonl(tmp_path / "x.jsonl", [{"id": "a", "normalized_text": "b"}]))
    typo = [{"id": "a", "normalized_text": "b", "sentiment": "positive"}]
    with pytest.raises(ValueError, match="'positive', which is not a SLUE-SA class"):
        sentiment_examples(load_slue("voxceleb", data_files=write_jsonl(tmp_path / "typo.jsonl", typo)))
    with pytest.raises(ValueError, match="task must be"):
        load_slue("hvb")
    with pytest.raises(ValueError, match="offline, pass data_files="):
        load_slue("voxceleb")  # HF_HUB_OFFLINE=1 in tests
