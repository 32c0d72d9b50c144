"""`lst generate`: text and audio prompts, text and speech output (a WAV through the vocoder), streaming, flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.modeling_lst.export import save_with_remote_code
from lst_speech.modeling_lst.modality import generate_in_modality
from lst_speech.tokenization.speech.espeak import EspeakSynthesizer
from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor
from lst_speech.tokenization.vocoder import UnitHifiGanVocoder, UnitVocoderConfig
from lst_speech.training.cli.main import main


@pytest.fixture(scope="module")
def parts(tokenizer, sample_verses, tmp_path_factory):
    root = tmp_path_factory.mktemp("generate")
    torch.manual_seed(0)
    # Saved as runs and releases save their finals (with their code and auto_map), which must load without
    # trust_remote_code where the package is installed.
    save_with_remote_code(LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")), root / "model",
                          tokenizer)
    UnitHifiGanVocoder(UnitVocoderConfig.from_preset("tiny", num_units=tokenizer.num_units)).save_pretrained(
        root / "vocoder")
    synthesizer = EspeakSynthesizer()
    extractor = MfccUnitExtractor(tokenizer.num_units).fit(
        [synthesizer.synthesize(v).waveform for v in sample_verses[:6]], synthesizer.sampling_rate)
    extractor.save_pretrained(root / "extractor")
    speech = synthesizer.synthesize("In the beginning")  # at espeak's 22050 Hz: the extractor resamples
    soundfile.write(str(root / "prompt.wav"), speech.waveform, speech.sampling_rate)
    return root


@pytest.mark.slow
def test_text_prompt_to_text_streams_what_greedy_generate_writes(parts, tokenizer, tmp_path, capsys):
    main(["generate", "--model", str(parts / "model"), "--text", "In the beginning", "--max_new_tokens", "12",
          "--output_json", str(tmp_path / "out.json")])
    result = json.loads((tmp_path / "out.json").read_text())
    model = LSTForCausalLM.from_pretrained(parts / "model").eval()
    with torch.no_grad():
        expected = generate_in_modality(model, tokenizer, [["In the beginning"]], "text", max_new_tokens=12,
                                        do_sample=False)[0]
    assert result["text"] == " ".join(s for s in expected if isinstance(s, str)).strip() and result["text"]
    printed = capsys.readouterr().out
    assert printed.count(result["text"]) == 2  # streamed as it came, then printed whole


@pytest.mark.slow
def test_sampling_is_seeded(parts, tmp_path):
    outputs = []
    for seed in (3, 3, 4):
        main(["generate", "--model", str(parts / "model"), "--text", "And God said", "--do_sample", "--seed",
              str(seed), "--max_new_tokens", "16", "--no_stream", "--output_json", str(tmp_path / "s.json")])
        outputs.append(json.loads((tmp_path / "s.json").read_text())["text"])
    assert outputs[0] == outputs[1] and outputs[0] != outputs[2]


def test_audio_prompt_to_speech_writes_a_wav_of_the_units_duration(parts, tmp_path, capsys):
    wav = tmp_path / "out.wav"
    main(["generate", "--model", str(parts / "model"), "--audio", str(parts / "prompt.wav"), "--extractor",
          str(parts / "extractor"), "--output_modality", "speech", "--max_new_tokens", "20", "--vocoder",
          str(parts / "vocoder"), "--wav", str(wav), "--output_json", str(tmp_path / "out.json")])
    result = json.loads((tmp_path / "out.json").read_text())
    samples, rate = soundfile.read(str(wav))
    config = UnitVocoderConfig.from_pretrained(parts / "vocoder")
    assert rate == config.sampling_rate and 0 < len(result["units"]) <= 20
    assert len(samples) == len(result["units"]) * config.sampling_rate // config.frame_rate
    assert f"wrote {wav}" in capsys.readouterr().out
    main(["generate", "--model", str(parts / "model"), "--audio", str(parts / "prompt.wav"), "--extractor",
          str(parts / "extractor"), "--output_modality", "speech", "--max_new_tokens", "8"])
    assert np.asarray(json.loads(capsys.readouterr().out.splitlines()[-1])["units"]).size > 0  # no vocoder: ids


@pytest.mark.parametrize("flags, message", [
    (["--audio", "x.wav"], "needs --extractor"),
    (["--text", "hi", "--vocoder", "v"], "add --output_modality speech"),
    (["--text", "hi", "--output_modality", "speech", "--transcribe"], "needs --vocoder"),
    (["--text", "  "], "prompt is empty"),
    (["--text", "hi", "--do_sample", "--temperature", "0"], "--temperature must be positive"),
])
def test_bad_generate_requests_are_refused_with_the_reason(parts, flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--model", str(parts / "model"), *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_a_fresh_process_loads_a_release_without_trust_remote_code(parts):
    """The in-process tests import the tokenizer package already; a new `lst` process must register it too."""
    finished = subprocess.run([sys.executable, "-m", "lst_speech.training.cli.main", "generate", "--model", str(parts / "model"),
                               "--text", "In the beginning", "--max_new_tokens", "4", "--no_stream"],
                              capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "trust_remote_code" not in finished.stderr
