"""Bad audio and alignments: missing files, layouts, unsigned PCM, clips shorter than a window. Each is an error
naming the file or array and the problem, or a documented conversion; never a silently wrong unit sequence."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile

from lst_speech.tokenization.speech.audio import channel_axis, duration_seconds, prepare_waveform, read_audio
from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

RATE = 16000


@pytest.fixture(scope="module")
def extractor():
    rng = np.random.default_rng(0)
    return MfccUnitExtractor(num_units=4).fit([rng.normal(size=RATE).astype(np.float32)], RATE)


def tone(seconds=0.5, rate=RATE):
    return np.sin(np.arange(int(seconds * rate)) * 0.05).astype(np.float32)


def test_a_missing_audio_file_is_reported_as_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Audio file '.*nope.wav' does not exist: check the path"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(FileNotFoundError, match=r"is a directory, not an audio file"):
        read_audio(tmp_path)


# The formats soundfile writes whose headers say how long they are; libsndfile reads a cut WAV, AIFF, AU, W64, RF64
# or NIST file (or an MP3) as a shorter whole one, and fails on a cut FLAC, Ogg or CAF.
TRUNCATABLE = [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("WAV", "ULAW"), ("WAVEX", "FLOAT"), ("RF64", "PCM_16"),
               ("W64", "PCM_16"), ("AIFF", "PCM_16"), ("AIFF", "FLOAT"), ("AU", "PCM_16"), ("AU", "FLOAT"),
               ("NIST", "PCM_16"), ("MP3", "MPEG_LAYER_III"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"),
               ("OGG", "OPUS"), ("CAF", "PCM_16")]


@pytest.mark.parametrize("container, subtype", TRUNCATABLE)
def test_a_file_cut_to_half_its_length_is_named_in_every_format(container, subtype, tmp_path):
    path = tmp_path / f"cut.{container.lower()}"
    samples = (0.3 * np.sin(np.arange(32000) / 10)).astype(np.float32)
    soundfile.write(str(path), samples, 16000, format=container, subtype=subtype)
    assert len(read_audio(path)[0]) == 32000  # whole, it reads whole
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"(Cannot read audio file .*{path.name}'|{path.name}' is truncated: its "
                                         r"header declares 32000 frames)"):
        read_audio(path)  # a cut FLAC, Ogg or CAF: libsndfile's own words, after the file's name


def test_an_unreadable_and_a_truncated_file_are_named(tmp_path):
    (tmp_path / "text.wav").write_text("not audio at all")
    with pytest.raises(ValueError, match=r"Cannot read audio file '.*text.wav'"):
        read_audio(tmp_path / "text.wav")
    soundfile.write(tmp_path / "cut.wav", tone(), RATE, subtype="PCM_16")
    data = (tmp_path / "cut.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.wav' is truncated: its header declares 8000 frames"):
        read_audio(tmp_path / "cut.wav")


@pytest.mark.parametrize("waveform, words", [
    (np.zeros(0, dtype=np.float32), r"clip is empty"),
    (np.zeros(RATE, dtype=np.float32), r"clip is silent"),
    (np.full(RATE, np.nan, dtype=np.float32), r"clip contains NaN or infinite samples"),
    (np.r_[tone(), np.inf].astype(np.float32), r"NaN or infinite"),
    (np.array(["a", "b"]), r"clip has dtype <U1; expected float or integer PCM"),
    (np.zeros((2, 3, 4), dtype=np.float32) + 0.1, r"must be 1-D \(mono\) or 2-D \(channels\)"),
    (np.ones((40, 40), dtype=np.float32), r"clip has shape \(40, 40\): neither axis reads as at most 8 channels"),
    (np.ones((12, 9000), dtype=np.float32), r"neither axis reads as at most 8 channels"),
])
def test_bad_waveforms_are_named(waveform, words):
    with pytest.raises(ValueError, match=words):
        prepare_waveform(waveform, RATE, RATE, name="clip")


@pytest.mark.parametrize("rate", [0, -16000, 16000.5, True])
def test_a_bad_sampling_rate_is_named(rate):
    with pytest.raises(ValueError, match=r"sampling rate must be a positive integer number of Hz"):
        prepare_waveform(tone(), rate, RATE, name="clip")


def test_stereo_is_downmixed_in_either_layout_and_durations_agree():
    mono = tone()
    last = np.stack([mono, mono], axis=1)  # (samples, channels): soundfile's layout
    first = last.T  # (channels, samples): torchaudio's
    assert channel_axis(last) == 1 and channel_axis(first) == 0
    np.testing.assert_allclose(prepare_waveform(first, RATE, RATE), mono)
    np.testing.assert_allclose(prepare_waveform(last, RATE, RATE), mono)
    assert duration_seconds(first, RATE) == duration_seconds(last, RATE) == duration_seconds(mono, RATE) == 0.5


def test_unsigned_pcm_is_centred_and_signed_pcm_scaled():
    samples = np.array([0, 64, 128, 192, 255], dtype=np.uint8)
    np.testing.assert_allclose(prepare_waveform(samples, RATE, RATE), [-1.0, -0.5, 0.0, 0.5, 127 / 128])
    signed = np.array([-32768, 0, 16384], dtype=np.int16)
    np.testing.assert_allclose(prepare_waveform(signed, RATE, RATE), [-1.0, 0.0, 0.5])


def test_audio_shorter_than_one_analysis_window_is_refused(extractor):
    with pytest.raises(ValueError, match=r"is 12.5 ms long, shorter than one analysis window \(25 ms, 400 samples"):
        extractor(tone(seconds=0.0125), RATE)
    assert len(extractor(tone(seconds=0.025), RATE)) >= 1  # exactly one window is enough


def test_a_short_clip_at_another_rate_is_measured_after_resampling(extractor):
    with pytest.raises(ValueError, match=r"shorter than one analysis window"):
        extractor(tone(seconds=0.01, rate=8000), 8000)


def test_conversions_are_logged_not_silent(caplog):
    with caplog.at_level(logging.DEBUG, logger="lst_speech.tokenization.speech.audio"):
        prepare_waveform(np.stack([tone(), tone()], axis=1), 8000, RATE, name="stereo clip")
    assert "downmixing 2 channels to mono" in caplog.text and "resampling 8000 Hz -> 16000 Hz" in caplog.text


def test_a_conversion_is_logged_at_info_once_whatever_the_files_are_called(caplog):
    """A corpus resamples thousands of files: the first at INFO, the others (other names, same rates) at DEBUG."""
    with caplog.at_level(logging.DEBUG, logger="lst_speech.tokenization.speech.audio"):
        for name in ("prompt one", "prompt two", "prompt three"):
            prepare_waveform(tone(), 11025, RATE, name=name)
    resampled = [r for r in caplog.records if "resampling 11025 Hz -> 16000 Hz" in r.getMessage()]
    assert [r.levelno for r in resampled] == [logging.INFO, logging.DEBUG, logging.DEBUG]
    assert resampled[0].getMessage().startswith("prompt one: ") and "further ones" in resampled[0].getMessage()


def test_receptive_field_of_a_hubert_shaped_encoder():
    from transformers import HubertConfig

    from lst_speech.tokenization.speech.audio import feature_encoder_receptive_field

    assert feature_encoder_receptive_field(HubertConfig()) == 400


def test_the_feature_extractor_and_processor_name_what_is_missing(extractor, tokenizer):
    from lst_speech.tokenization import SpeechTextProcessor, UnitFeatureExtractor
    from lst_speech.tokenization.alignment.word_alignment import WordAlignment

    features = UnitFeatureExtractor.from_unit_extractor(extractor)
    with pytest.raises(ValueError, match=r"Pass sampling_rate with the audio"):
        features(tone())
    with pytest.raises(ValueError, match=r"The extractor makes 4 units but the tokenizer has 50"):
        SpeechTextProcessor(extractor, tokenizer)
    with pytest.raises(ValueError, match=r"2 words but 1 time spans"):
        WordAlignment(["in", "the"], [[0.0, 0.1]])
