"""Whisper-encoder units: k-means over a Whisper encoder layer, from the CTranslate2 tiny.en (its last layer from
CTranslate2, any other from its weights in transformers) and from a transformers checkpoint, saved, reloaded and
equal, and carried by a release's remote code."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_whisper_transcriber import PROMPTS  # tests/ is on sys.path (pytest's prepend import mode)

from lst_speech.tokenization.corpora.transcript_files import asterisk_source
from lst_speech.tokenization.speech.audio import read_audio


@pytest.fixture(scope="module")
def asterisk():
    return asterisk_source("en")


@pytest.mark.slow
def test_whisper_units_from_ctranslate2_save_reload_and_are_equal(asterisk, tmp_path):
    from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor
    from lst_speech.tokenization.speech.whisper_units import WhisperUnitExtractor

    audio, _ = asterisk
    clips = [read_audio(audio / f"{name}.g722")[0] for name in PROMPTS]
    extractor = WhisperUnitExtractor("whisper", num_units=6).fit(clips, 16000)
    assert (extractor.layer, extractor.feature_size, extractor.frame_rate) == (4, 384, 50)  # tiny.en: 4 x 384
    units = extractor.batch(clips, 16000)
    assert [len(u) for u in units] == [int(np.ceil(len(c) / 320)) for c in clips]
    assert len(set(np.concatenate(units).tolist())) == 6
    extractor.save_pretrained(tmp_path / "units")
    assert json.loads((tmp_path / "units" / "unit_extractor.json").read_text())["model"] == "whisper"
    reloaded = load_unit_extractor(tmp_path / "units")
    np.testing.assert_array_equal(reloaded.centroids, extractor.centroids)
    for again, expected in zip(reloaded.batch(clips, 16000), units):
        np.testing.assert_array_equal(again, expected)



@pytest.mark.slow
def test_any_layer_of_the_ctranslate2_model_through_its_weights_in_transformers(asterisk):
    """CTranslate2 returns the last encoder layer only; the same weights read from model.bin into transformers'
    WhisperEncoder give that layer too (equal to CTranslate2's within float error) and every other one."""
    import torch
    from transformers import WhisperFeatureExtractor

    from lst_speech.tokenization.speech.ctranslate2_whisper import whisper_encoder_from_ctranslate2
    from lst_speech.tokenization.speech.whisper_models import default_whisper_model
    from lst_speech.tokenization.speech.whisper_units import WhisperUnitExtractor

    audio, _ = asterisk
    clip = read_audio(audio / "agent-pass.g722")[0]
    last = WhisperUnitExtractor("whisper").features(clip, 16000)
    encoder = whisper_encoder_from_ctranslate2(default_whisper_model())
    assert (encoder.config.encoder_layers, encoder.config.d_model, encoder.config.encoder_attention_heads) == (4, 384, 6)
    features = WhisperFeatureExtractor(feature_size=80)([clip], sampling_rate=16000, padding="max_length",
                                                        return_tensors="np")["input_features"]
    with torch.no_grad():
        states = encoder(torch.from_numpy(features.astype(np.float32)), output_hidden_states=True).hidden_states
    np.testing.assert_allclose(states[4][0, : len(last)].numpy(), last, atol=5e-3)
    second = WhisperUnitExtractor("whisper", layer=2)
    assert second.layer == 2 and second.feature_size == 384
    np.testing.assert_allclose(second.features(clip, 16000), states[2][0, : len(last)].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match=r"layer must be in 1..4"):
        WhisperUnitExtractor("whisper", layer=5)


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory) -> str:
    """A randomly initialised transformers WhisperModel (2 encoder layers, 80 mels), saved: the loading code of a
    transformers Whisper checkpoint, exercised without a download."""
    import torch
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=64, num_mel_bins=80, encoder_layers=2, decoder_layers=1, d_model=32,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, max_target_positions=32, decoder_start_token_id=1, pad_token_id=0,
                           bos_token_id=1, eos_token_id=2)
    directory = tmp_path_factory.mktemp("whisper")
    WhisperModel(config).save_pretrained(directory)
    return str(directory)


def test_whisper_units_from_a_transformers_checkpoint_take_any_layer(tiny_whisper):
    from lst_speech.tokenization.speech.whisper_units import WhisperUnitExtractor

    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 8000 + 17)]
    first, last = WhisperUnitExtractor(tiny_whisper, layer=1), WhisperUnitExtractor(tiny_whisper)
    assert (first.layer, last.layer, last.feature_size) == (1, 2, 32)
    one, two = first.features(clips[0], 16000), last.features(clips[0], 16000)
    assert one.shape == two.shape == (50, 32) and not np.allclose(one, two)
    np.testing.assert_allclose(two.mean(axis=1), 0, atol=1e-4)  # the last layer comes after the layer norm
    assert first.features(clips[1], 16000).shape == (26, 32)  # ceil(8017 / 320) frames
    long = np.tile(clips[0], 31)[: 16000 * 31]  # 31 s: two windows, 1500 + 50 frames
    assert first.features(long, 16000).shape == (1550, 32)
    with pytest.raises(ValueError, match=r"layer must be in 1..2"):
        WhisperUnitExtractor(tiny_whisper, layer=3)


def test_lst_units_fit_makes_whisper_units(tiny_whisper, tmp_path, capsys):
    import soundfile

    from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor
    from lst_speech.training.cli.main import main

    waveform = (0.1 * np.random.default_rng(2).standard_normal(16000)).astype(np.float32)
    soundfile.write(tmp_path / "a.wav", waveform, 16000)
    main(["units", "fit", "--kind", "whisper", "--whisper_model", tiny_whisper, "--layer", "1", "--num_units", "4",
          "--audio", str(tmp_path / "a.wav"), "--output", str(tmp_path / "units")])
    extractor = load_unit_extractor(tmp_path / "units")
    assert (extractor.kind, extractor.layer, extractor.num_units) == ("whisper_kmeans", 1, 4)
    assert len(extractor(waveform, 16000)) == 50
    with pytest.raises(SystemExit):
        main(["units", "fit", "--layer", "1", "--audio", str(tmp_path / "a.wav"), "--output", str(tmp_path / "m")])
    assert "--layer is for --kind whisper" in capsys.readouterr().err


@pytest.mark.slow
def test_autofeatureextractor_from_a_release_gives_whisper_units(tiny_whisper, tokenizer, tmp_path):
    """The release's remote code (written flat by `save_processor_with_remote_code`) carries the Whisper-encoder
    extractor: AutoFeatureExtractor loads it without the package and gives the same units."""
    import os
    import subprocess
    import sys
    import textwrap

    from test_remote_code import BLOCK_PROJECT  # tests/ is on sys.path (pytest's prepend import mode)

    from lst_speech.modeling_lst.export import save_processor_with_remote_code
    from lst_speech.tokenization import UnitFeatureExtractor
    from lst_speech.tokenization.processing_lst import SpeechTextProcessor
    from lst_speech.tokenization.speech.whisper_units import WhisperUnitExtractor

    rng = np.random.default_rng(1)
    waveform = (0.1 * rng.standard_normal(2 * 22050)).astype(np.float32)
    extractor = WhisperUnitExtractor(tiny_whisper, layer=1, num_units=tokenizer.num_units).fit([waveform], 22050)
    features = UnitFeatureExtractor.from_unit_extractor(extractor)
    assert (features.extractor_kind, features.whisper_model, features.whisper_layer) == (
        "whisper_kmeans", tiny_whisper, 1)
    save_processor_with_remote_code(SpeechTextProcessor(features, tokenizer), tmp_path / "release")
    assert (tmp_path / "release" / "whisper_units.py").is_file()
    np.save(tmp_path / "waveform.npy", waveform)
    script = BLOCK_PROJECT + textwrap.dedent(f"""
        import json, numpy as np
        from transformers import AutoFeatureExtractor
        features = AutoFeatureExtractor.from_pretrained({str(tmp_path / "release")!r}, trust_remote_code=True)
        units = features(np.load({str(tmp_path / "waveform.npy")!r}), sampling_rate=22050)["units"]
        print(json.dumps({{"kind": features.extractor_kind, "units": units.tolist()}}))
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output == {"kind": "whisper_kmeans", "units": extractor(waveform, 22050).tolist()}
