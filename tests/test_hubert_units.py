"""HuBERT units through the real loading path, with tiny randomly initialised checkpoints built here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import HubertConfig, HubertModel

from lst_speech.tokenization.speech.hubert_units import HubertUnitExtractor
from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor


def tiny_hubert(directory, extra_stride: bool = False, norm: str = "group") -> str:
    strides = (5, 2, 2, 2, 2, 2, 2) + ((2,) if extra_stride else ())
    config = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(32,) * len(strides), conv_stride=strides, conv_kernel=(10,) + (3,) * (len(strides) - 1),
                          num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                          feat_extract_norm=norm, do_stable_layer_norm=norm == "layer")
    torch.manual_seed(0)
    HubertModel(config).save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="module")
def speech(sample_verses):
    from lst_speech.tokenization.speech.espeak import EspeakSynthesizer

    synthesizer = EspeakSynthesizer()
    return [synthesizer.synthesize(v) for v in sample_verses[:4]]


@pytest.mark.parametrize(("extra_stride", "frame_rate"), [(False, 50), (True, 25)])
def test_units_at_the_models_frame_rate_and_saved(tmp_path, speech, extra_stride, frame_rate):
    extractor = HubertUnitExtractor(tiny_hubert(tmp_path / "hubert", extra_stride), layer=2, num_units=8)
    assert extractor.frame_rate == frame_rate
    extractor.fit([s.waveform for s in speech], speech[0].sampling_rate)
    units = extractor(speech[0].waveform, speech[0].sampling_rate)
    duration = speech[0].waveform.size / speech[0].sampling_rate
    assert abs(len(units) - duration * frame_rate) <= 2 and set(units.tolist()) <= set(range(8))
    extractor.save_pretrained(tmp_path / "units")
    reloaded = load_unit_extractor(tmp_path / "units")
    assert isinstance(reloaded, HubertUnitExtractor) and reloaded.layer == 2
    np.testing.assert_array_equal(reloaded(speech[0].waveform, speech[0].sampling_rate), units)


def test_centroids_from_a_npy_file_and_bad_inputs(tmp_path):
    model = tiny_hubert(tmp_path / "hubert")
    np.save(tmp_path / "km.npy", np.random.default_rng(0).normal(size=(5, 32)).astype(np.float32))
    extractor = HubertUnitExtractor(model, layer=1, num_units=5, centroids=tmp_path / "km.npy")
    # HuBERT's convolutions are unpadded: one second gives (16000 - 400) // 320 + 1 = 49 frames.
    assert extractor(np.sin(np.arange(16000) / 10.0), 16000).shape == (49,)
    with pytest.raises(ValueError, match="do not match 5 units of 32-dimensional hubert_kmeans features"):
        HubertUnitExtractor(model, layer=1, num_units=5, centroids=np.zeros((5, 39)))
    with pytest.raises(ValueError, match="layer must be in 1..2"):
        HubertUnitExtractor(model, layer=3, num_units=5)
    with pytest.raises(ValueError, match="offline, pass a local directory"):
        HubertUnitExtractor(tmp_path / "no-such-model", layer=1, num_units=5)


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["group", "layer"])
def test_batched_extraction_equals_one_by_one(tmp_path, speech, norm):
    """Layer-norm models run as one padded batch with an attention mask; group-norm ones one by one. Either
    way each utterance gets the units it gets alone."""
    extractor = HubertUnitExtractor(tiny_hubert(tmp_path / "hubert", norm=norm), layer=2, num_units=8)
    waveforms, rate = [s.waveform for s in speech], speech[0].sampling_rate
    extractor.fit(waveforms, rate)
    assert len({w.size for w in waveforms}) > 1  # the batch really is padded
    batched = extractor.batch(waveforms, rate)
    for waveform, units in zip(waveforms, batched):
        np.testing.assert_array_equal(units, extractor(waveform, rate))
    deduplicated = extractor.batch(waveforms, rate, deduplicate=True)
    for (units, durations), full in zip(deduplicated, batched):
        np.testing.assert_array_equal(np.repeat(units, durations), full)
        assert (units[1:] != units[:-1]).all()
