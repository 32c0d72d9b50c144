"""CTC forced alignment: our Viterbi against brute force (and torchaudio when importable), and the aligner
through the real loading path with a tiny randomly initialised Wav2Vec2ForCTC built here."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

from lst_speech.tokenization.alignment.ctc_aligner import CtcAligner, ctc_viterbi, token_frame_spans


def path_score(log_probs, labels):
    return log_probs[np.arange(len(labels)), labels].sum()


def collapses_to(labels, targets, blank):
    collapsed = [k for k, _ in itertools.groupby(labels) if k != blank]
    return collapsed == list(targets)


@pytest.mark.parametrize("seed", range(6))
def test_viterbi_finds_the_best_valid_path(seed):
    rng = np.random.default_rng(seed)
    frames, vocabulary, blank = 6, 3, 0
    targets = np.array([[1, 2], [1, 1], [2, 1, 2]][seed % 3])
    log_probs = np.log(rng.dirichlet(np.ones(vocabulary), size=frames))
    labels = ctc_viterbi(log_probs, targets, blank)
    assert collapses_to(labels, targets, blank)
    best = max(path_score(log_probs, np.array(p)) for p in itertools.product(range(vocabulary), repeat=frames)
               if collapses_to(p, targets, blank))
    assert path_score(log_probs, labels) == pytest.approx(best)
    spans = token_frame_spans(labels, len(targets), blank)
    assert (spans[:, 1] > spans[:, 0]).all() and (spans[1:, 0] >= spans[:-1, 1]).all()


def test_a_transcript_of_more_than_63_characters_follows_its_emissions():
    """Past 127 CTC states (64 characters) the backtrace once wrapped: a numpy int8 step made the state int8."""
    targets = np.arange(1, 101) % 5 + 1  # 100 characters, neighbours always different
    labels = np.repeat(np.r_[0, targets, 0], 3)  # each character on three frames, blanks at the edges
    log_probs = np.full((len(labels), 6), np.log(1e-4))
    log_probs[np.arange(len(labels)), labels] = np.log(0.99)
    path = ctc_viterbi(log_probs, targets, blank=0)
    assert path.tolist() == labels.tolist()
    assert token_frame_spans(path, len(targets), 0)[:, 0].tolist() == list(range(3, 303, 3))


def test_too_short_audio_is_an_error():
    with pytest.raises(ValueError, match="3 frames cannot hold the 3 transcript tokens"):
        ctc_viterbi(np.log(np.full((3, 3), 1 / 3)), np.array([1, 1, 2]), blank=0)


def test_torchaudio_agrees_when_importable():
    try:
        import torchaudio.functional
    except (ImportError, OSError) as error:
        pytest.skip(f"torchaudio is not importable here ({type(error).__name__}); it is optional")
    rng = np.random.default_rng(0)
    log_probs = np.log(rng.dirichlet(np.ones(6), size=40)).astype(np.float32)
    targets = np.array([1, 2, 2, 3, 5, 4, 4, 1])
    ours = ctc_viterbi(log_probs, targets, blank=0)
    theirs, _ = torchaudio.functional.forced_align(torch.from_numpy(log_probs)[None], torch.from_numpy(targets)[None].int(), blank=0)
    assert path_score(log_probs, ours) == pytest.approx(path_score(log_probs, theirs[0].numpy()), abs=1e-4)


def tiny_ctc_model(directory) -> str:
    vocabulary = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: i + 3 for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ'")}}
    (directory / "vocab.json").parent.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocabulary))
    Wav2Vec2CTCTokenizer(str(directory / "vocab.json")).save_pretrained(directory)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(directory)
    config = Wav2Vec2Config(vocab_size=len(vocabulary), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=4, pad_token_id=0)
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(directory)
    return str(directory)


def test_aligner_loads_a_local_checkpoint_and_aligns_every_word(tmp_path):
    from lst_speech.tokenization.speech.espeak import EspeakSynthesizer

    aligner = CtcAligner(tiny_ctc_model(tmp_path / "ctc"))
    assert aligner.frame_rate == 50
    text = "In the beginning God created the heaven and the earth."
    speech = EspeakSynthesizer().synthesize(text)
    alignment = aligner.align(speech.waveform, speech.sampling_rate, text)
    alignment.check_transcript(text)  # random weights: the path is arbitrary, but every word gets frames
    duration = speech.waveform.size / speech.sampling_rate
    assert (alignment.times[:, 1] > alignment.times[:, 0]).all() and alignment.times[-1, 1] <= duration + 0.02
    assert (alignment.times[1:, 0] >= alignment.times[:-1, 1]).all()
    with pytest.raises(ValueError, match="vocabulary lacks the characters \\['é'\\]"):
        aligner.align(speech.waveform, speech.sampling_rate, "café")
    with pytest.raises(ValueError, match="offline, pass a local directory"):
        CtcAligner(tmp_path / "missing")


def test_aligner_follows_the_emissions(tmp_path, monkeypatch):
    """With emissions that spell the words at known frames, the word times are exactly those frames."""
    aligner = CtcAligner(tiny_ctc_model(tmp_path / "ctc"))
    vocabulary, frames = aligner.vocabulary, 50
    # frames: 0-9 blank, 10-14 "H", 15-19 "I", 20-24 blank, 25-29 "|", 30-39 "YO", 40-49 blank
    labels = ["<pad>"] * 10 + ["H"] * 5 + ["I"] * 5 + ["<pad>"] * 5 + ["|"] * 5 + ["Y"] * 5 + ["O"] * 5 + ["<pad>"] * 10
    log_probs = np.full((frames, len(vocabulary)), np.log(1e-4))
    log_probs[np.arange(frames), [vocabulary[label] for label in labels]] = np.log(0.99)
    monkeypatch.setattr(aligner, "log_probs", lambda waveform, rate: log_probs)
    alignment = aligner.align(np.ones(16000, dtype=np.float32), 16000, "hi yo!")
    np.testing.assert_allclose(alignment.times, [[0.2, 0.4], [0.6, 0.8]])
    assert alignment.words == ["hi", "yo!"]
