"""The unit vocoder: shapes and lengths at the frame rate, save/load, bad input, and training that lowers its loss
and resumes exactly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from transformers import AutoModel

from lst_speech.tokenization.vocoder import UnitHifiGanVocoder, UnitVocoderConfig
from lst_speech.training.checkpoints import read_log
from lst_speech.training.vocoder.train_vocoder import parse_arguments, train


def tiny_vocoder(**kwargs) -> UnitHifiGanVocoder:
    torch.manual_seed(0)
    return UnitHifiGanVocoder(UnitVocoderConfig.from_preset("tiny", num_units=20, **kwargs)).eval()


@pytest.mark.parametrize("frame_rate, hop", [(50, 320), (25, 640)])
def test_output_length_is_the_durations_at_the_frame_rate(frame_rate, hop):
    vocoder = tiny_vocoder(frame_rate=frame_rate, deduplicated=True)
    units = torch.tensor([[3, 4, 5, 0], [7, 8, 9, 10]])
    durations = torch.tensor([[2, 1, 3, 0], [1, 1, 1, 4]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    output = vocoder(units, durations, mask)
    assert vocoder.config.hop_length == hop
    assert output.waveform_lengths.tolist() == [6 * hop, 7 * hop]
    assert output.waveform.shape == (2, 7 * hop)
    assert torch.all(output.waveform[0, 6 * hop:] == 0)  # past a row's length: silence, not leftovers
    # raw units are one frame each; a deduplicated vocoder without durations predicts them (at least 1 frame)
    assert tiny_vocoder(frame_rate=frame_rate).synthesize(np.arange(5)).shape == (5 * hop,)
    predicted = vocoder(units[:1, :3])
    assert predicted.waveform_lengths[0] == predicted.durations.sum() * hop and (predicted.durations >= 1).all()


def test_save_and_load_give_the_same_waveform(tmp_path):
    vocoder = tiny_vocoder(deduplicated=True)
    vocoder.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is UnitHifiGanVocoder
    units, durations = np.array([1, 5, 9, 2]), np.array([2, 3, 1, 2])
    np.testing.assert_array_equal(loaded.synthesize(units, durations), vocoder.synthesize(units, durations))
    np.testing.assert_array_equal(loaded.synthesize(units), vocoder.synthesize(units))  # predicted durations too


@pytest.mark.parametrize("units, message", [
    ([3, 20, 4], r"\[20\] are outside this vocoder's 20 units"),
    ([-1, 2], r"\[-1\] are outside"),
    ([], "units is empty"),
])
def test_bad_units_are_named(units, message):
    with pytest.raises(ValueError, match=message):
        tiny_vocoder().synthesize(np.array(units, dtype=np.int64))


def test_bad_durations_and_shapes_are_refused():
    vocoder = tiny_vocoder(deduplicated=True)
    with pytest.raises(ValueError, match="at least one frame"):
        vocoder.synthesize(np.array([1, 2]), np.array([1, 0]))
    with pytest.raises(ValueError, match="integer ids of shape"):
        vocoder(torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="multiply to"):
        UnitVocoderConfig(upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8])
    with pytest.raises(ValueError, match="whole number of samples"):
        UnitVocoderConfig(sampling_rate=16000, frame_rate=30)


@pytest.mark.slow
def test_training_lowers_the_loss_and_resumes_exactly(tmp_path):
    output_dir = tmp_path / "run"
    args = ["--output_dir", str(output_dir), "--num_utterances", "6", "--held_out_utterances", "2",
            "--num_units", "16", "--preset", "tiny", "--deduplicated", "true", "--segment_frames", "16",
            "--batch_size", "4", "--max_steps", "24", "--adversarial_from_step", "16", "--logging_steps", "4",
            "--save_steps", "12", "--learning_rate", "2e-3"]
    result = train(parse_arguments(args))
    log = read_log(output_dir / "log.jsonl")
    assert [row["step"] for row in log] == list(range(4, 25, 4))
    assert log[3]["mel"] < 0.8 * log[0]["mel"]  # the mel-only phase learns
    assert log[0]["duration"] > log[3]["duration"]
    assert "discriminator" in log[-1] and "discriminator" not in log[3]
    assert result["held_out"] == 2
    vocoder = AutoModel.from_pretrained(output_dir / "vocoder")
    assert vocoder.config.num_units == 16 and vocoder.config.deduplicated

    # a run killed after its step-12 checkpoint continues to the same losses
    shutil.rmtree(output_dir / "checkpoint-24")
    shutil.rmtree(output_dir / "vocoder")
    train(parse_arguments(args))
    resumed = read_log(output_dir / "log.jsonl")
    assert [row["step"] for row in resumed] == [row["step"] for row in log]
    for before, after in zip(log, resumed):
        for key in before:
            assert after[key] == pytest.approx(before[key], rel=1e-5, abs=1e-7), (before["step"], key)
    assert json.loads((output_dir / "training_args.json").read_text())["max_steps"] == 24
