"""Multiple-choice loaders on small fixtures in the sets' own formats, and spoken versions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lst_speech.evaluation.multiple_choice_data import (
    TextItem,
    load_hellaswag,
    load_items,
    load_minimal_pairs,
    load_story_cloze,
    load_text_items,
    spoken_items,
    text_items,
    topic_story_cloze,
    write_items,
)
from lst_speech.tokenization.speech.espeak import EspeakSynthesizer
from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

STORY_CLOZE_CSV = """InputStoryid,InputSentence1,InputSentence2,InputSentence3,InputSentence4,RandomFifthSentenceQuiz1,RandomFifthSentenceQuiz2,AnswerRightEnding
s1,Tom went to the store.,He wanted milk.,The store was closed.,He went home.,Tom was sad.,Tom bought milk.,1
s2,Ann planted seeds.,She watered them daily.,Weeks passed.,Sprouts appeared.,Ann ate the car.,Ann was happy.,2
s3,The dog barked.,It saw a cat.,The cat ran.,The dog chased it.,The dog lost the cat.,The dog flew away.,1
"""

HELLASWAG_ROW = {"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.",
                 "ctx_b": "he", "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                                            "is holding a rubik's cube.", "starts pulling up roofing on a roof."],
                 "label": 3}


def test_story_cloze_and_topic_story_cloze(tmp_path):
    path = tmp_path / "cloze.csv"
    path.write_text(STORY_CLOZE_CSV)
    items = load_story_cloze(path)
    assert [i.label for i in items] == [0, 1, 0]
    assert items[0].context == "Tom went to the store. He wanted milk. The store was closed. He went home."
    topical = topic_story_cloze(items, seed=1)
    for original, item in zip(items, topical):
        assert item.endings[item.label] == original.endings[original.label]
        wrong = item.endings[1 - item.label]
        assert wrong in {o.endings[o.label] for o in items if o is not original}
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a StoryCloze CSV"):
        load_story_cloze(tmp_path / "bad.csv")


def test_hellaswag_jsonl_with_clean_up(tmp_path):
    row = dict(HELLASWAG_ROW, ctx_a="[header] How to fix a roof [title] Climb up.")
    (tmp_path / "hs.jsonl").write_text(json.dumps(HELLASWAG_ROW) + "\n" + json.dumps(row) + "\n")
    items = load_hellaswag(tmp_path / "hs.jsonl")
    assert items[0].context == "A man is sitting on a roof. He" and items[0].label == 3 and len(items[0].endings) == 4
    assert items[1].context == "How to fix a roof. Climb up. He"


def test_minimal_pairs(tmp_path):
    (tmp_path / "pairs.jsonl").write_text('{"good": "brick", "bad": "blick"}\n{"good": "the dogs bark", "bad": "the dogs barks"}\n')
    items = load_minimal_pairs(tmp_path / "pairs.jsonl")
    assert [(i.context, i.endings, i.label) for i in items] == [("", ["brick", "blick"], 0),
                                                               ("", ["the dogs bark", "the dogs barks"], 0)]
    assert text_items(items)[0].context == []


def test_items_written_read_back_unchanged_and_bad_rows_named(tmp_path):
    items = [TextItem("Gen 1:1", "In the beginning", ["God created", "the flood came"], 0),
             TextItem("x", "", ["a", "b", "c"], 2)]
    write_items(items, tmp_path / "items.jsonl")
    assert load_text_items(tmp_path / "items.jsonl", "items") == items
    (tmp_path / "bad.jsonl").write_text('{"context": "a", "endings": ["b"], "label": 0}\n{"context": "a", "label": 0}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: an item needs 'endings'"):
        load_items(tmp_path / "bad.jsonl")
    (tmp_path / "label.jsonl").write_text('{"context": "a", "endings": ["b", "c"], "label": 2}\n')
    with pytest.raises(ValueError, match=r"label.jsonl:1: 'label' must index one of the 2 endings, got 2"):
        load_items(tmp_path / "label.jsonl")


def test_spoken_versions_in_every_direction(tmp_path):
    path = tmp_path / "cloze.csv"
    path.write_text(STORY_CLOZE_CSV)
    items = load_story_cloze(path)[:1]

    synthesizer = EspeakSynthesizer()
    extractor = MfccUnitExtractor(num_units=20).fit(
        [synthesizer.synthesize(t).waveform for t in STORY_CLOZE_CSV.splitlines()[1:]], synthesizer.sampling_rate)

    for direction, context_kind, ending_kind in [("S->S", np.ndarray, np.ndarray), ("T->T", str, str),
                                                 ("S->T", np.ndarray, str), ("T->S", str, np.ndarray)]:
        (item,) = spoken_items(items, direction, synthesizer, extractor)
        assert isinstance(item.context[0], context_kind) and isinstance(item.endings[0][0], ending_kind)
        if ending_kind is np.ndarray:  # each ending synthesised on its own: its own length of speech
            alone = synthesizer.synthesize(items[0].endings[0])
            # espeak's trailing pause varies by a few frames between calls; the prompt would add seconds.
            assert abs(len(item.endings[0][0]) - len(extractor(alone.waveform, alone.sampling_rate))) <= 5
    with pytest.raises(ValueError, match="direction must be one of"):
        spoken_items(items, "S2S", synthesizer, extractor)
