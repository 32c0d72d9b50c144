"""Phone purity, cluster purity and PNMI (HuBERT's definitions) on hand-made cases worked out on paper."""

from __future__ import annotations

import math

import pytest

from lst_speech.evaluation.unit_quality import phone_frames, unit_quality


def test_a_perfect_and_a_useless_clustering():
    labels = ["a", "a", "b", "b", "c", "c"]
    perfect = unit_quality(labels, [7, 7, 3, 3, 5, 5])
    assert (perfect["phone_purity"], perfect["cluster_purity"]) == (1.0, 1.0)
    assert perfect["pnmi"] == pytest.approx(1.0)
    useless = unit_quality(labels, [0, 0, 0, 0, 0, 0])  # one unit for everything tells nothing about the phone
    assert useless["phone_purity"] == pytest.approx(1 / 3) and useless["cluster_purity"] == 1.0
    assert useless["pnmi"] == pytest.approx(0.0)


def test_a_mixed_case_by_hand():
    # frames: (a,0) (a,0) (a,1) (b,1): p(0)=1/2 holds only a; p(1)=1/2 holds a and b equally
    quality = unit_quality(["a", "a", "a", "b", None], [0, 0, 1, 1, 9])  # the unlabelled frame is left out
    assert quality["frames"] == 4 and quality["units"] == 2
    assert quality["phone_purity"] == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    assert quality["cluster_purity"] == pytest.approx(0.75 * (2 / 3) + 0.25 * 1)
    h_phone = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    h_phone_given_unit = 0.5 * 0 + 0.5 * math.log(2)
    assert quality["pnmi"] == pytest.approx((h_phone - h_phone_given_unit) / h_phone)


def test_phone_frames_label_each_frame_by_its_centre():
    # 50 Hz frames (centres at 10, 30, 50, 70 ms): "p" 0-40 ms, "a" 40-61 ms, then nothing
    assert phone_frames([("p", 0.0, 0.04), ("a", 0.04, 0.061)], 50, 4) == ["p", "p", "a", None]
    with pytest.raises(ValueError, match="3 phone labels but 2 units"):
        unit_quality(["a", "b", "c"], [1, 2])
    with pytest.raises(ValueError, match="No frame has a phone label"):
        unit_quality([None, None], [1, 2])


def test_espeak_reports_each_words_phonemes_inside_the_word():
    from lst_speech.tokenization.speech.espeak import EspeakSynthesizer

    speech = EspeakSynthesizer().synthesize("Mary rolled the barrel.")
    assert len(speech.phonemes) == len(speech.words) == 4
    for (start, end), phonemes in zip(speech.word_times, speech.phonemes):
        starts = [time for time, _ in phonemes]
        assert phonemes and starts == sorted(starts) and start <= starts[0] and starts[-1] < end
    assert [name for _, name in speech.phonemes[0]][:2] == ["m", "e@"]  # espeak's "Mary": m, e@, r, i
