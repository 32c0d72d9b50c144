"""Word alignments: TextGrid / CTM / JSON readers, transcript checks, silence spans and pocketsphinx."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from lst_speech.tokenization.alignment.readers import read_ctm, read_json_alignment, read_textgrid
from lst_speech.tokenization.alignment.word_alignment import WordAlignment, silence_spans, word_times_to_frame_spans

# A TextGrid as the Montreal Forced Aligner writes it (long format, empty intervals for silence).
MFA_TEXTGRID = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 2.0
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 2.0
        intervals: size = 5
        intervals [1]:
            xmin = 0
            xmax = 0.31
            text = ""
        intervals [2]:
            xmin = 0.31
            xmax = 0.62
            text = "in"
        intervals [3]:
            xmin = 0.62
            xmax = 0.80
            text = "the"
        intervals [4]:
            xmin = 0.80
            xmax = 1.50
            text = "beginning"
        intervals [5]:
            xmin = 1.50
            xmax = 2.0
            text = ""
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 2.0
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 2.0
            text = "IH"
"""


def test_textgrid_words_tier_with_silences_as_gaps(tmp_path):
    path = tmp_path / "utt.TextGrid"
    path.write_text(MFA_TEXTGRID)
    alignment = read_textgrid(path)
    assert alignment.words == ["in", "the", "beginning"]
    np.testing.assert_allclose(alignment.times, [[0.31, 0.62], [0.62, 0.80], [0.80, 1.50]])
    alignment.check_transcript("In the beginning.")
    spans = alignment.frame_spans(frame_rate=50, num_frames=100)
    np.testing.assert_array_equal(spans, [[15, 31], [31, 40], [40, 75]])
    np.testing.assert_array_equal(silence_spans(spans, 100), [[0, 15], [75, 100]])
    with pytest.raises(ValueError, match="no tier 'word'; the tiers are"):
        read_textgrid(path, tier="word")
    (tmp_path / "bad.TextGrid").write_text("not a textgrid")
    with pytest.raises(ValueError, match="Cannot parse TextGrid"):
        read_textgrid(tmp_path / "bad.TextGrid")


def test_ctm_by_utterance_and_its_errors(tmp_path):
    path = tmp_path / "align.ctm"
    path.write_text("utt1 1 0.10 0.20 hello 0.9\nutt1 1 0.30 0.25 world\nutt2 A 0.00 0.50 <sil>\nutt2 A 0.5 0.4 yes\n")
    alignments = read_ctm(path)
    assert alignments["utt1"].words == ["hello", "world"]
    np.testing.assert_allclose(alignments["utt1"].times, [[0.1, 0.3], [0.3, 0.55]])
    assert alignments["utt2"].words == ["yes"]
    path.write_text("utt1 1 0.10 hello\n")
    with pytest.raises(ValueError, match="line 1: expected 'utterance channel start duration word"):
        read_ctm(path)
    path.write_text("utt1 1 0.10 0.5 hello\nutt1 1 0.30 0.2 world\n")
    with pytest.raises(ValueError, match="word 1 \\('world'\\) starts at 0.300 s, before word 0"):
        read_ctm(path)


def test_json_shapes(tmp_path):
    words = [{"word": "in", "start": 0.0, "end": 0.2}, {"word": "", "start": 0.2, "end": 0.3},
             {"word": "the", "start": 0.3, "end": 0.5}]
    assert read_json_alignment(words).words == ["in", "the"]
    assert read_json_alignment({"words": words}).words == ["in", "the"]
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"utt1": words, "utt2": {"words": words[:1]}}))
    both = read_json_alignment(path)
    assert both["utt1"].words == ["in", "the"] and both["utt2"].words == ["in"]
    with pytest.raises(ValueError, match="entry 0 needs 'word', 'start' and 'end'"):
        read_json_alignment([{"word": "in", "begin": 0}])
    with pytest.raises(ValueError, match="bad time span"):
        read_json_alignment([{"word": "in", "start": 0.5, "end": 0.1}])
    for word in (None, 3, ["in"]):
        with pytest.raises(ValueError, match=rf"entry 1's 'word' is {re.escape(repr(word))}, not text"):
            read_json_alignment([{"word": "in", "start": 0, "end": 0.2}, {"word": word, "start": 0.2, "end": 0.4}])


def test_transcript_mismatch_and_times_outside_the_audio_are_named():
    alignment = WordAlignment(["in", "the", "end"], [[0, 0.1], [0.1, 0.2], [0.2, 0.4]])
    with pytest.raises(ValueError, match="word 2 is 'end' but the transcript has 'beginning'"):
        alignment.check_transcript("In the beginning")
    with pytest.raises(ValueError, match="3 words and the transcript 4: transcript words missing from word 3"):
        alignment.check_transcript("in the end again")
    with pytest.raises(ValueError, match="Word 2: ends at 0.400 s, after the audio"):
        word_times_to_frame_spans(alignment.times, 50, num_frames=15)
    regrouped = alignment.regroup(["in the", "end"])
    np.testing.assert_allclose(regrouped.times, [[0, 0.2], [0.2, 0.4]])


def test_pocketsphinx_aligns_espeak_speech_within_50_ms(sample_verses):
    from lst_speech.tokenization.alignment.pocketsphinx_aligner import PocketsphinxAligner
    from lst_speech.tokenization.speech.espeak import EspeakSynthesizer

    synthesizer, aligner = EspeakSynthesizer(), PocketsphinxAligner()
    errors = []
    for text in ["In the beginning God created the heaven and the earth.",
                 "And the evening and the morning were the third day."]:
        speech = synthesizer.synthesize(text)
        alignment = aligner.align(speech.waveform, speech.sampling_rate, text).regroup(speech.words)
        alignment.check_transcript(text)
        errors.append(np.abs(alignment.times[:, 0] - speech.word_times[:, 0]))
    assert np.concatenate(errors).mean() < 0.05
    with pytest.raises(ValueError, match="dictionary lacks \\['bdellium'\\]"):
        aligner.align(speech.waveform, speech.sampling_rate, "There is bdellium")
