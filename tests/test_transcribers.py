"""Transcribers (pocketsphinx on espeak-ng speech, units through a vocoder), the bigram LM they decode with, and
PELM scored end to end for every direction, speech continuations vocoded and transcribed."""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from lst_speech.evaluation.transcription.ngram_lm import write_arpa_bigram
from lst_speech.evaluation.transcription.transcribers import PocketsphinxTranscriber, UnitTranscriber
from lst_speech.tokenization.speech.espeak import EspeakSynthesizer
from lst_speech.tokenization.vocoder import UnitHifiGanVocoder, UnitVocoderConfig

COMMANDS = ["one two three four five", "go forward ten meters", "the cat sat on the mat", "open the door please",
            "turn left at the red light"]


@pytest.fixture(scope="module")
def command_lm(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("lm") / "commands.arpa"
    write_arpa_bigram(COMMANDS, path)
    return str(path)


def read_arpa(path):
    unigram, backoff, bigram = {}, {}, defaultdict(dict)
    section = None
    for line in open(path).read().splitlines():
        if line.startswith("\\"):
            section = line
            continue
        fields = line.split("\t")
        if section == "\\1-grams:" and len(fields) >= 2:
            unigram[fields[1]] = 10 ** float(fields[0])
            if len(fields) == 3:
                backoff[fields[1]] = 10 ** float(fields[2])
        elif section == "\\2-grams:" and len(fields) == 2:
            history, word = fields[1].split(" ")
            bigram[history][word] = 10 ** float(fields[0])
    return unigram, backoff, bigram


def test_bigram_lm_is_a_distribution_after_every_history(tmp_path):
    write_arpa_bigram(["In the beginning God created the heaven and the earth.", "And the earth was without form"],
                      tmp_path / "lm.arpa")
    unigram, backoff, bigram = read_arpa(tmp_path / "lm.arpa")
    assert sum(p for w, p in unigram.items() if w != "<s>") == pytest.approx(1.0, abs=1e-5)
    for history, seen in bigram.items():
        unseen = sum(p for w, p in unigram.items() if w not in seen and w != "<s>")
        assert sum(seen.values()) + backoff[history] * unseen == pytest.approx(1.0, abs=1e-4), history
    assert bigram["the"]["earth"] == pytest.approx((2 - 0.7) / 4, rel=1e-5)  # "the" is followed 4 times, earth twice
    with pytest.raises(ValueError, match="No text"):
        write_arpa_bigram(["..."], tmp_path / "empty.arpa")


@pytest.mark.slow
def test_pocketsphinx_recovers_espeak_sentences(command_lm, caplog):
    synthesizer, transcriber = EspeakSynthesizer(), PocketsphinxTranscriber(language_model=command_lm)
    # DEBUG: an earlier test in the same process may already have logged this conversion once at INFO.
    with caplog.at_level(logging.DEBUG, logger="lst_speech.tokenization.speech.audio"):
        for sentence in COMMANDS[:2]:
            speech = synthesizer.synthesize(sentence)  # at espeak's 22050 Hz: resampled, and the log says so
            assert transcriber(speech.waveform, speech.sampling_rate) == sentence
    assert "22050 Hz -> 16000 Hz" in caplog.text
    with pytest.raises(ValueError, match="silent"):  # digital silence has nothing to transcribe, and says so
        transcriber(np.zeros(16000, dtype=np.float32), 16000)
    quiet = np.random.default_rng(0).normal(0, 1e-4, 16000).astype(np.float32)
    assert transcriber(quiet, 16000) == ""  # faint noise: no words, an empty transcript


class RecordingTranscriber:
    def __init__(self):
        self.lengths = []

    def __call__(self, waveform, sampling_rate):
        self.lengths.append(len(waveform))
        return "heard"


def test_unit_transcriber_gives_a_deduplicating_vocoder_the_true_durations():
    torch.manual_seed(0)
    vocoder = UnitHifiGanVocoder(UnitVocoderConfig.from_preset("tiny", num_units=20, deduplicated=True)).eval()
    recorder = RecordingTranscriber()
    assert UnitTranscriber(vocoder, recorder)(np.array([3, 3, 3, 7, 7, 1])) == "heard"
    assert recorder.lengths == [6 * 320]  # runs collapsed, their lengths kept: six frames
    with pytest.raises(ValueError, match="empty speech continuation"):
        UnitTranscriber(vocoder, recorder)(np.array([], dtype=np.int64))
    frame_vocoder = UnitHifiGanVocoder(UnitVocoderConfig.from_preset("tiny", num_units=20))
    with pytest.raises(ValueError, match="--deduplicated true"):
        UnitTranscriber(frame_vocoder, recorder, units_are_deduplicated=True)


@pytest.fixture(scope="module")
def tiny_ctc_recogniser(tmp_path_factory) -> str:
    """A randomly initialised Wav2Vec2ForCTC with a letter vocabulary, saved with its processor: a transformers
    recogniser loaded by path (it spells random letters, which is all the plumbing needs)."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    directory = tmp_path_factory.mktemp("ctc")
    vocabulary = {"<pad>": 0, "|": 1, **{letter: index + 2 for index, letter in enumerate("abcdefghijklmnopqrstuvwxyz")}}
    (directory / "vocab.json").write_text(json.dumps(vocabulary))
    tokenizer = Wav2Vec2CTCTokenizer(str(directory / "vocab.json"), pad_token="<pad>", word_delimiter_token="|")
    processor = Wav2Vec2Processor(Wav2Vec2FeatureExtractor(sampling_rate=16000), tokenizer)
    torch.manual_seed(0)
    config = Wav2Vec2Config(vocab_size=len(vocabulary), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(32, 32, 32, 32, 32, 32, 32), num_conv_pos_embeddings=16,
                            pad_token_id=0)
    Wav2Vec2ForCTC(config).save_pretrained(directory)
    processor.save_pretrained(directory)
    return str(directory)


def test_pipeline_transcriber_loads_a_recogniser_by_path(tiny_ctc_recogniser, caplog):
    from lst_speech.evaluation.transcription.transcribers import load_transcriber

    transcriber = load_transcriber(tiny_ctc_recogniser)
    speech = EspeakSynthesizer().synthesize("go forward ten meters")
    text = transcriber(speech.waveform, speech.sampling_rate)
    assert text and set(text) <= set("abcdefghijklmnopqrstuvwxyz ")


@pytest.mark.slow
def test_lst_eval_pelm_scores_all_four_directions(tokenizer, external_lm, sample_verses, tiny_ctc_recogniser,
                                                  tmp_path):
    from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
    from lst_speech.tokenization.corpora.spoken_corpus import build_spoken_corpus
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor
    from lst_speech.training.cli.main import main

    synthesizer = EspeakSynthesizer()
    extractor = MfccUnitExtractor(50).fit([synthesizer.synthesize(v).waveform for v in sample_verses[:10]], 22050)
    build_spoken_corpus(sample_verses[:4], synthesizer, extractor, progress=False).save_to_disk(tmp_path / "corpus")
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    UnitHifiGanVocoder(UnitVocoderConfig.from_preset("tiny", num_units=50)).save_pretrained(tmp_path / "vocoder")

    command = ["eval", "pelm", "--model", str(model_dir), "--corpus", str(tmp_path / "corpus"), "--external_lm",
               external_lm, "--num", "4", "--directions", "T->T", "S->S", "S->T", "T->S", "--max_new_tokens", "40",
               "--output", str(tmp_path / "pelm")]
    with pytest.raises(SystemExit):  # speech continuations without a vocoder: refused before anything is generated
        main(command)
    main(command + ["--vocoder", str(tmp_path / "vocoder"), "--transcriber", tiny_ctc_recogniser])
    results = json.loads((tmp_path / "pelm.json").read_text())["results"]
    assert set(results) == {"T->T", "S->S", "S->T", "T->S"}
    for direction, result in results.items():
        assert result["num_scored"] + result["num_empty"] == 4, direction
        assert math.isfinite(result["perplexity"]) and result["perplexity"] > 1
    table = (tmp_path / "pelm.md").read_text()
    assert "| S->S |" in table and "bootstrap over continuations" in table
    # The same seed samples the same continuations; only the pooling of their losses changes, and it is recorded.
    main(command[:11] + ["T->T", "--max_new_tokens", "40", "--reduction", "utterance", "--output",
                         str(tmp_path / "pelm_utterance")])
    per_utterance = json.loads((tmp_path / "pelm_utterance.json").read_text())["results"]["T->T"]
    assert per_utterance["examples"] == results["T->T"]["examples"]
    assert (per_utterance["reduction"], results["T->T"]["reduction"]) == ("utterance", "corpus")
    assert math.isfinite(per_utterance["perplexity"]) and per_utterance["perplexity"] != results["T->T"]["perplexity"]
