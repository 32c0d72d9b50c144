"""The Whisper CTC head (`lst aligner train`, `--aligner ctc:<folder>`): its CTC loss and training recover a known
alignment, it saves and reloads as safetensors, refuses another encoder's states, and the command trains one on
recorded Asterisk prompts that the CTC aligner then uses."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from lst_speech.tokenization.alignment.ctc_aligner import CtcAligner, ctc_viterbi, token_frame_spans
from lst_speech.tokenization.alignment.whisper_ctc import WhisperCtcConfig, WhisperCtcHead
from lst_speech.training.aligner.train_ctc_aligner import collate, spelled_words


@pytest.mark.parametrize("text, words", [
    ("Call waiting.", ["call", "waiting"]),
    ("You don't have permission", ["you", "don't", "have", "permission"]),
    ("Press 1 now", None),
    ("Press # to confirm", None),
    ("Call-Forward is on", None),
    ("Please hold ...", None),
])
def test_spelled_words_keep_only_transcripts_written_in_letters(text, words):
    assert spelled_words(text) == words


def test_the_ctc_loss_is_torchs_over_the_real_frames_and_characters():
    torch.manual_seed(0)
    head = WhisperCtcHead(WhisperCtcConfig(hidden_size=8, vocab_size=5))
    states, mask = torch.randn(2, 12, 8), torch.ones(2, 12, dtype=torch.long)
    mask[1, 9:] = 0
    labels = torch.tensor([[1, 2, 3], [4, 4, -100]])
    output = head(states, mask, labels)
    log_probs = output.logits.log_softmax(-1).transpose(0, 1)
    expected = torch.nn.functional.ctc_loss(log_probs, torch.tensor([1, 2, 3, 4, 4]), torch.tensor([12, 9]),
                                            torch.tensor([3, 2]), blank=0)
    assert output.loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_training_the_head_recovers_a_known_alignment(tmp_path):
    """States that name their frame's character (plus noise): after training, forced alignment puts each character
    on exactly the frames it was given, and the head reloads from safetensors with the same logits."""
    rng = np.random.default_rng(0)
    width, vocabulary = 16, 6  # 0 blank, characters 1..5
    codes = rng.normal(size=(vocabulary, width)).astype(np.float32)

    def utterance():
        targets, labels = [], [0] * int(rng.integers(2, 5))
        for _ in range(int(rng.integers(2, 6))):
            character = int(rng.integers(1, vocabulary))
            if targets and targets[-1] == character:
                labels += [0] * 2
            targets.append(character)
            labels += [character] * int(rng.integers(2, 5)) + [0] * int(rng.integers(0, 3))
        labels += [0] * 3
        states = codes[labels] + 0.3 * rng.normal(size=(len(labels), width)).astype(np.float32)
        return states, targets, np.array(labels)

    torch.manual_seed(0)
    head = WhisperCtcHead(WhisperCtcConfig(hidden_size=width, vocab_size=vocabulary))
    optimizer = torch.optim.AdamW(head.parameters(), 3e-2)
    for _ in range(150):
        batch = collate([utterance()[:2] for _ in range(16)])
        loss = head(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1
    head.eval()
    for _ in range(5):
        states, targets, labels = utterance()
        with torch.no_grad():
            log_probs = head(torch.from_numpy(states)[None]).logits[0].log_softmax(-1).numpy()
        spans = token_frame_spans(ctc_viterbi(log_probs, np.array(targets), 0), len(targets), 0)
        given = np.flatnonzero((labels != 0) & np.r_[True, labels[1:] != labels[:-1]])  # each character's first frame
        assert spans[:, 0].tolist() == given.tolist()
    head.save_pretrained(tmp_path / "head")
    assert (tmp_path / "head" / "model.safetensors").is_file()
    from transformers import AutoModel

    reloaded = AutoModel.from_pretrained(tmp_path / "head")
    assert isinstance(reloaded, WhisperCtcHead)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(torch.from_numpy(states)[None]).logits, head(torch.from_numpy(states)[None]).logits)


def test_a_head_refuses_a_whisper_model_of_another_shape():
    head = WhisperCtcHead(WhisperCtcConfig(whisper_model="whisper", encoder_layer=2, encoder_layers=4, hidden_size=512))
    with pytest.raises(ValueError, match="4-layer, 512-wide Whisper encoder; 'whisper' is 4 layers of 384"):
        head.encoder()


@pytest.mark.parametrize("settings, words", [
    ({"encoder_layer": 5, "encoder_layers": 4}, "encoder_layer 5 is past the encoder's 4 layers"),
    ({"vocab_size": 0}, "vocab_size must be a positive whole number"),
    ({"vocab_size": 3, "pad_token_id": 3}, "pad_token_id (the CTC blank) 3 is not in the 3-token vocabulary"),
])
def test_bad_configurations_are_named(settings, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        WhisperCtcConfig(**settings)


@pytest.mark.slow
def test_lst_aligner_train_on_recorded_prompts_and_align_with_it(tmp_path):
    """`lst aligner train` on 30 Asterisk prompts: the loss falls, the held-out prompts are scored with intervals,
    digits are skipped and listed, and `ctc:<output>/aligner` aligns a recording word by word."""
    from lst_speech.tokenization.alignment.sources import make_aligner
    from lst_speech.tokenization.corpora.transcript_files import (
        asterisk_source,
        describes_a_sound,
        read_transcript_file,
    )
    from lst_speech.tokenization.speech.audio import read_audio
    from lst_speech.training.cli.main import main

    audio, transcripts = asterisk_source("en")
    entries = read_transcript_file(transcripts)
    chosen = [name for name, (text, _) in entries.items()
              if spelled_words(text) and not describes_a_sound(text) and (audio / f"{name}.g722").is_file()]
    chosen = chosen[:30] + [name for name, (text, _) in entries.items() if "1" in text.split()][:1]
    (tmp_path / "list.txt").write_text("".join(f"{name}: {entries[name][0]}\n" for name in chosen))
    main(["aligner", "train", "--output_dir", str(tmp_path / "run"), "--audio_dir", str(audio), "--transcripts",
          str(tmp_path / "list.txt"), "--held_out_every", "5", "--num_train_epochs", "30", "--batch_size", "8"])
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 30 and losses[-1] < losses[0] / 2
    scores = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert scores["utterances"] >= 1 and scores["cer_interval"][0] <= scores["cer"] <= scores["cer_interval"][1]
    skipped = json.loads((tmp_path / "run" / "skipped.json").read_text())
    assert [row["name"] for row in skipped] == chosen[30:]
    folder = tmp_path / "run" / "aligner"
    assert (folder / "model.safetensors").is_file() and (folder / "vocab.json").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert (config["whisper_model"], config["encoder_layer"], config["encoder_layers"]) == ("whisper", 4, 4)
    assert config["trained_on"] == {"transcripts": str(tmp_path / "list.txt"), "audio_dir": str(audio),
                                    "prompts": 30 - scores["utterances"], "held_out_every": 5}
    aligner = make_aligner(f"ctc:{folder}")
    assert isinstance(aligner, CtcAligner) and aligner.frame_rate == 50
    text = entries[chosen[0]][0]
    waveform, rate = read_audio(audio / f"{chosen[0]}.g722")
    alignment = aligner.align(waveform, rate, text)
    alignment.check_transcript(text)
    assert (alignment.times[:, 1] > alignment.times[:, 0]).all()
    assert (alignment.times[1:, 0] >= alignment.times[:-1, 1]).all() and alignment.times[-1, 1] <= len(waveform) / rate
