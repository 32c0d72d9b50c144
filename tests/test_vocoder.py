"""The unit vocoder: shapes and lengths at the frame rate, save/load, bad input, training that lowers its loss
and resumes exactly, and recorded prompts held out by prompt."""

from __future__ import annotations

import gzip
import json
import shutil

import datasets
import numpy as np
import pytest
import torch
from transformers import AutoModel

from lst_speech.tokenization.corpora.transcript_files import asterisk_source, held_out_by_prompt
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


def test_prompts_are_held_out_by_a_hash_of_their_name_that_other_prompts_never_move():
    names = [f"p{i:02d}" for i in range(25)]
    assert held_out_by_prompt(names) == {"p02", "p16", "p22", "p23"}  # CRC-32 % 10 == 9: the rule, pinned
    assert held_out_by_prompt(names[::-1]) == held_out_by_prompt(names)  # order does not matter
    # dropping or adding other prompts keeps every remaining prompt on its side (a sorted position would not)
    assert held_out_by_prompt(names[3:]) == held_out_by_prompt(names) - {"p02"}
    assert held_out_by_prompt([*names, "q1", "q2"]) & set(names) == held_out_by_prompt(names)
    many = [f"prompt-{i}" for i in range(5000)]
    assert 400 < len(held_out_by_prompt(many)) < 600  # about one in ten
    with pytest.raises(ValueError, match="one prompt in every 1 leaves nothing to train on"):
        held_out_by_prompt(names, every=1)


PROMPT_NAMES = ["activated", "added", "agent-loggedoff", "agent-loginok", "agent-pass", "auth-thankyou", "calling",
                "call-forwarding", "call-waiting", "cancelled", "agent-user"]


def test_a_vocoder_trains_on_recordings_with_a_transcript_file_and_holds_prompts_out(tmp_path):
    """Eleven Asterisk prompts with a `name: text` list that also names a described sound and a missing file: the
    three whose name's CRC-32 is 4 modulo 5 (`--held_out_every 5`) are held out with their transcripts, the
    described sound and the missing file are left out, training runs on the other eight, and `lst vocoder evaluate`
    scores the three held out."""
    audio, transcript_file = asterisk_source("en")
    texts = dict(line.split(": ", 1) for line in gzip.decompress(transcript_file.read_bytes()).decode().splitlines()
                 if line.split(": ", 1)[0] in PROMPT_NAMES)
    folder = tmp_path / "prompts"
    folder.mkdir()
    for name in [*PROMPT_NAMES, "beep"]:
        shutil.copy(audio / f"{name}.g722", folder / f"{name}.g722")
    lines = [f"{name}: {texts[name]}" for name in PROMPT_NAMES]
    (folder / "prompts.txt").write_text("\n".join(["; eleven prompts", *lines, "beep: [this is a simple beep tone]",
                                                   "gone: Missing audio."]) + "\n")
    output_dir = tmp_path / "run"
    args = ["--output_dir", str(output_dir), "--audio_dir", str(folder), "--transcripts", str(folder / "prompts.txt"),
            "--num_units", "8", "--preset", "tiny", "--segment_frames", "8", "--batch_size", "2", "--max_steps", "2",
            "--adversarial_from_step", "1", "--save_steps", "2", "--held_out_every", "5"]
    assert train(parse_arguments(args))["held_out"] == 3
    splits = datasets.load_from_disk(str(output_dir / "data"))
    held_out = ["agent-loggedoff", "calling", "cancelled"]
    assert splits["held_out"]["id"] == held_out and splits["held_out"]["text"] == [texts[n] for n in held_out]
    assert splits["train"]["id"] == sorted(set(PROMPT_NAMES) - set(held_out))
    assert all(splits["train"]["text"]) and max(max(u) for u in splits["train"]["units"]) < 8

    # `lst vocoder evaluate` scores the held-out prompts against their transcripts, each rate with its interval
    from lst_speech.training.cli.main import main

    main(["vocoder", "evaluate", "--run", str(output_dir), "--transcriber", "whisper"])
    result = json.loads((output_dir / "intelligibility.json").read_text())
    assert result["utterances"] == 3 and (result["transcriber"], result["language_model"]) == ("whisper", None)
    for audio in ("original", "vocoded"):
        for rate in ("wer", "cer"):
            low, high = result[audio][f"{rate}_interval"]
            assert low <= result[audio][rate] <= high
    assert result["wer_difference"] == pytest.approx(result["vocoded"]["wer"] - result["original"]["wer"])
    assert len(result["wer_difference_interval"]) == 2


@pytest.mark.parametrize("flags, message", [
    (["--transcripts", "prompts.txt"], "--transcripts names the prompts of an --audio_dir: pass the folder"),
    (["--asterisk", "en", "--audio_dir", "."], "Give --asterisk LANG or --audio_dir"),
    (["--asterisk", "xx"], "No Asterisk prompt set 'xx'"),
])
def test_bad_prompt_sources_are_named(flags, message):
    with pytest.raises(ValueError, match=message):
        parse_arguments(["--output_dir", "run", *flags])
