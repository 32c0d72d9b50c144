"""Speech front end: espeak synthesis with word times, audio input checks, MFCC k-means units."""

from __future__ import annotations

import difflib

import numpy as np
import pytest

from lst_speech.tokenization import deduplicate_units
from lst_speech.tokenization.speech.audio import prepare_waveform, read_audio
from lst_speech.tokenization.speech.espeak import EspeakSynthesizer
from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor


@pytest.fixture(scope="module")
def synthesizer() -> EspeakSynthesizer:
    return EspeakSynthesizer()


@pytest.fixture(scope="module")
def extractor(synthesizer, sample_verses) -> MfccUnitExtractor:
    speech = [synthesizer.synthesize(verse) for verse in sample_verses[:60]]
    return MfccUnitExtractor(num_units=50).fit([s.waveform for s in speech], synthesizer.sampling_rate)


def test_synthesis_gives_one_time_span_per_word(synthesizer):
    text = "In the beginning God created the heaven and the earth. And the earth was without form."
    speech = synthesizer.synthesize(text)
    duration = speech.waveform.size / speech.sampling_rate
    assert speech.sampling_rate == 22050 and speech.waveform.dtype == np.float32
    assert " ".join(speech.words).split() == text.replace(".", "").split()  # every word, in order
    assert len(speech.word_times) == len(speech.words)
    starts, ends = speech.word_times[:, 0], speech.word_times[:, 1]
    assert (np.diff(starts) > 0).all() and (ends > starts).all() and (ends[:-1] <= starts[1:] + 1e-9).all()
    assert ends[-1] <= duration
    # The sentence break is a pause: "earth." ends clearly before "And" starts.
    assert starts[speech.words.index("And")] - ends[speech.words.index("And") - 1] > 0.1


def test_nothing_to_say_is_an_error(synthesizer):
    with pytest.raises(ValueError, match="Nothing to speak"):
        synthesizer.synthesize(" ... ")


def test_audio_conversions_and_errors():
    tone = np.sin(np.linspace(0, 2000, 32000)).astype(np.float32)
    pcm = (tone * 32767).astype(np.int16)
    np.testing.assert_allclose(prepare_waveform(pcm, 16000, 16000), tone, atol=1e-4)
    stereo = np.stack([tone, tone], axis=1)
    np.testing.assert_allclose(prepare_waveform(stereo, 16000, 16000), tone, atol=1e-6)
    assert prepare_waveform(tone, 32000, 16000).shape == (16000,)
    for bad, message in [(np.zeros(0), "is empty"), (np.zeros(100), "is silent"),
                         (np.array([0.1, np.nan]), "NaN or infinite"), (np.zeros((2, 2, 2)) + 1, "must be 1-D"),
                         (np.array(["a"]), "dtype")]:
        with pytest.raises(ValueError, match=message):
            prepare_waveform(bad, 16000, 16000)


def test_unreadable_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF....not really a wav")
    with pytest.raises(ValueError, match="Cannot read audio file"):
        read_audio(path)
    import soundfile

    soundfile.write(tmp_path / "whole.wav", np.full(16000, 0.1, dtype=np.float32), 16000, subtype="PCM_16")
    assert read_audio(tmp_path / "whole.wav")[0].shape == (16000,)
    whole = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="is truncated: its header declares 16000 frames but it holds 79"):
        read_audio(tmp_path / "cut.wav")


def test_units_come_at_50_hz_and_survive_saving(extractor, synthesizer, tmp_path):
    speech = synthesizer.synthesize("And God said, Let there be light: and there was light.")
    units = extractor(speech.waveform, speech.sampling_rate)
    duration = speech.waveform.size / speech.sampling_rate
    assert abs(len(units) - duration * 50) <= 2 and units.min() >= 0 and units.max() < 50
    extractor.save_pretrained(tmp_path)
    np.testing.assert_array_equal(MfccUnitExtractor.from_pretrained(tmp_path)(speech.waveform, 22050), units)
    with pytest.raises(ValueError, match="do not match 50 units of 39-dimensional"):
        MfccUnitExtractor(50, np.zeros((50, 13)))
    with pytest.raises(ValueError, match="has no centroids"):
        MfccUnitExtractor(50)(speech.waveform, 22050)


def test_the_same_word_in_two_sentences_is_closer_than_different_words(extractor, synthesizer):
    def word_units(sentence: str, word: str) -> np.ndarray:
        speech = synthesizer.synthesize(sentence)
        units = extractor(speech.waveform, speech.sampling_rate)
        start, end = speech.word_times[speech.words.index(word)]
        return deduplicate_units(units[int(start * 50) : int(np.ceil(end * 50))])[0]

    def distance(a, b) -> float:
        return 1 - difflib.SequenceMatcher(None, a.tolist(), b.tolist()).ratio()

    words = ["darkness", "waters", "firmament", "evening"]
    first = {w: word_units(f"And the {w} was there.", w) for w in words}
    second = {w: word_units(f"He saw {w} upon the face of it.", w) for w in words}
    for word in words:
        same = distance(first[word], second[word])
        different = min(distance(first[word], second[other]) for other in words if other != word)
        assert same < different, (word, same, different)


def test_word_times_become_disjoint_frame_spans():
    from lst_speech.tokenization.alignment.word_alignment import word_times_to_frame_spans

    spans = word_times_to_frame_spans([[0.0, 0.31], [0.31, 0.33], [0.5, 0.9]], frame_rate=50, num_frames=50)
    assert spans.tolist() == [[0, 16], [16, 17], [25, 45]]  # the short word keeps one frame; 17-25 is silence
    for times, message in [([[0.2, 0.1]], "reversed"), ([[0.0, 2.0]], "after the audio"),
                           ([[0.0, 0.5], [0.4, 0.6]], "before word 0 ends")]:
        with pytest.raises(ValueError, match=message):
            word_times_to_frame_spans(times, 50, 50)


def test_spoken_corpus_rows_feed_the_tokenizer(synthesizer, extractor, tokenizer, sample_verses):
    from lst_speech.tokenization import SpeechSegment
    from lst_speech.tokenization.corpora.spoken_corpus import build_spoken_corpus

    corpus = build_spoken_corpus(sample_verses[:5], synthesizer, extractor, progress=False)
    assert corpus.column_names == ["id", "text", "words", "units", "word_spans", "character_starts"]
    assert len(corpus) == 5
    for row in corpus:
        spans = np.array(row["word_spans"])
        assert len(spans) == len(row["words"]) and spans[-1, 1] <= len(row["units"])
        assert (spans[1:, 0] >= spans[:-1, 1]).all()
        units = np.array(row["units"]) % tokenizer.num_units  # the test tokenizer has fewer units
        encoding = tokenizer(segments=[SpeechSegment(units, spans), row["text"]])
        assert len(encoding["word_spans"]) == len(row["words"])


def test_words_reproduce_the_text_after_multi_sentence_input(synthesizer, sample_verses):
    """espeak-ng repeats stale or mid-word character positions after a multi-sentence text; the words must
    still be the text's words, each once, with increasing times."""
    from lst_speech.tokenization.alignment.word_alignment import normalise_words

    texts = [
        "And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit "
        "of God moved upon the face of the waters.",
        "And God said, Let there be light: and there was light.",
        "And Adah bare Jabal: he was the father of such as dwell in tents, and of such as have cattle.",
        "And Pharaoh commanded his men concerning him: and they sent him away, and his wife, and all that he had.",
    ] + sample_verses[:40]
    for text in texts:
        speech = synthesizer.synthesize(text)
        assert normalise_words(" ".join(speech.words)) == normalise_words(text), text
        assert (np.diff(speech.word_times[:, 0]) > 0).all()


def test_extractor_deduplicates_with_durations(extractor, synthesizer):
    speech = synthesizer.synthesize("Behold, the man is become as one of us.")
    units = extractor(speech.waveform, speech.sampling_rate)
    deduplicated, durations = extractor(speech.waveform, speech.sampling_rate, deduplicate=True)
    assert len(deduplicated) < len(units) and durations.sum() == len(units)
    np.testing.assert_array_equal(np.repeat(deduplicated, durations), units)
    batched = extractor.batch([speech.waveform, speech.waveform[: speech.waveform.size // 2]], speech.sampling_rate)
    np.testing.assert_array_equal(batched[0], units)


def test_processor_makes_model_inputs_with_word_spans(extractor, synthesizer, tokenizer, tmp_path):
    from lst_speech.tokenization.alignment.word_alignment import WordAlignment
    from lst_speech.tokenization.processing_lst import SpeechTextProcessor
    from lst_speech.tokenization.segments import SpeechSegment

    processor = SpeechTextProcessor(extractor, tokenizer)
    texts = ["Behold, the man is become as one of us.", "And the evening and the morning were the third day."]
    speech = [synthesizer.synthesize(t) for t in texts]
    alignments = [WordAlignment(s.words, s.word_times) for s in speech]
    rate = speech[0].sampling_rate
    single = processor(audio=speech[0].waveform, sampling_rate=rate, text=texts[0], alignment=alignments[0])
    units = extractor(speech[0].waveform, rate)
    spans = alignments[0].frame_spans(extractor.frame_rate, len(units), speech[0].waveform.size / rate)
    expected = tokenizer(segments=[SpeechSegment(units, spans), texts[0]])
    assert single["input_ids"] == expected["input_ids"]
    np.testing.assert_array_equal(single["word_spans"], expected["word_spans"])
    assert len(single["word_spans"]) == len(speech[0].words)

    batch = processor(audio=[s.waveform for s in speech], sampling_rate=rate, text=texts, alignment=alignments,
                      order="text_first", padding=True, return_tensors="np")
    assert batch["input_ids"].shape[0] == 2 and batch["modality_mask"].sum() > 0
    assert processor(text=texts[1])["input_ids"] == tokenizer(segments=[texts[1]])["input_ids"]

    with pytest.raises(ValueError, match="transcript has"):
        processor(audio=speech[0].waveform, sampling_rate=rate, text=texts[1], alignment=alignments[0])
    with pytest.raises(ValueError, match="Pass sampling_rate"):
        processor(audio=speech[0].waveform)
    with pytest.raises(ValueError, match="2 examples of audio but 1 of text"):
        processor(audio=[s.waveform for s in speech], sampling_rate=rate, text=texts[:1])

    processor.save_pretrained(tmp_path / "processor")
    reloaded = SpeechTextProcessor.from_pretrained(tmp_path / "processor")
    again = reloaded(audio=speech[0].waveform, sampling_rate=rate, text=texts[0], alignment=alignments[0])
    assert again["input_ids"] == single["input_ids"]


def test_the_feature_extractor_is_whole_in_its_config_file(extractor, synthesizer, tmp_path):
    """transformers >= 5.25 builds an AutoFeatureExtractor from preprocessor_config.json's dictionary alone
    (`from_dict`), so the centroids travel inside that file, exactly."""
    import json

    from lst_speech.tokenization import UnitFeatureExtractor

    features = UnitFeatureExtractor.from_unit_extractor(extractor)
    features.save_pretrained(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["preprocessor_config.json"]
    rebuilt = UnitFeatureExtractor.from_dict(json.loads((tmp_path / "preprocessor_config.json").read_text()))
    np.testing.assert_array_equal(rebuilt.centroids, extractor.centroids)
    speech = synthesizer.synthesize("In the beginning")
    np.testing.assert_array_equal(rebuilt(speech.waveform, sampling_rate=speech.sampling_rate)["units"],
                                  extractor(speech.waveform, speech.sampling_rate))
    assert f"centroids of shape ({extractor.num_units}, 39)" in repr(rebuilt) and len(repr(rebuilt)) < 300
