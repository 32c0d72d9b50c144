"""ASR and TTS fine-tuning through the LM (lst_speech.training.finetuning.speech_text_tasks): encoding, scoring, memorisation, steps."""

from __future__ import annotations

import json
import math

import datasets
import numpy as np
import pytest
import torch

from lst_speech.evaluation.transcription.error_rates import transcript_error_rates, unit_error_rate
from lst_speech.modeling_lst import LSTConfig
from lst_speech.training.finetuning.loop import FinetuningArguments, finetune
from lst_speech.training.finetuning.paired_data import paired_rows
from lst_speech.training.finetuning.speech_text_tasks import AsrTask, TtsTask

PHRASES = ["in the beginning", "god created the heaven", "and the earth", "let there be light"]


def pairs(seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"text": text, "units": rng.integers(0, 50, size=int(rng.integers(9, 14))).tolist()} for text in PHRASES]


@pytest.fixture(scope="module")
def workspace(bases, tmp_path_factory):
    """The tiny bases, and four pairs saved as the main job saves its corpus (by split)."""
    root = tmp_path_factory.mktemp("speech_text")
    rows = datasets.Dataset.from_list(pairs())
    datasets.DatasetDict({"train": rows, "held_out": rows}).save_to_disk(root / "corpus")
    for model in ("lst", "llama"):
        (root / model).symlink_to(bases / model)
    return root


def arguments(workspace, model, task, output_dir, **overrides) -> FinetuningArguments:
    values = dict(model_name_or_path=str(workspace / model), task=task, train_data=str(workspace / "corpus" / "train"),
                  validation_data=str(workspace / "corpus" / "held_out"), output_dir=str(output_dir),
                  lora_preset="full", max_steps=60, eval_steps=30, per_device_batch_size=4, learning_rate=3e-3,
                  warmup_steps=5, max_new_tokens=24)
    return FinetuningArguments(**{**values, **overrides})


def test_asr_and_tts_encode_their_targets_in_the_other_modality(tokenizer):
    row = {"id": "r", **pairs()[0]}
    asr, = AsrTask().encode([row], tokenizer, "speech", 2048)
    assert asr["prompt_ids"][-1] == tokenizer.text_marker_id and asr["reference"] == row["text"]
    target = asr["labels"][len(asr["prompt_ids"]):]
    assert target[-1] == tokenizer.eos_token_id
    assert tokenizer.decode_segments(asr["prompt_ids"][-1:] + target) == [row["text"]]
    tts, = TtsTask().encode([row], tokenizer, "text", 2048)
    assert tts["prompt_ids"][-1] == tokenizer.speech_marker_id
    assert tts["reference"] == {"text": row["text"], "units": row["units"]}
    assert tts["labels"][len(tts["prompt_ids"]):] == [u + tokenizer.speech_token_offset for u in row["units"]] + [
        tokenizer.eos_token_id]


def test_error_rates_are_corpus_level_with_intervals():
    rates = transcript_error_rates(["in the beginning", "let there be light"], ["in a beginning", "let there be light"])
    assert rates["wer"] == pytest.approx(1 / 7)  # one substitution over seven reference words
    assert rates["wer_interval"][0] <= rates["wer"] <= rates["wer_interval"][1]
    units = unit_error_rate([[1, 2, 3, 4], [5, 6]], [[1, 2, 4], [5, 6]])
    assert units["unit_error_rate"] == pytest.approx(1 / 6) and units["exact_matches"] == 1
    with pytest.raises(ValueError, match="must pair up"):
        unit_error_rate([[1]], [])


@pytest.mark.slow
@pytest.mark.parametrize("model", ["lst", "llama"])
def test_asr_and_tts_memorise_a_few_pairs(workspace, tokenizer, tmp_path, model):
    asr = finetune(arguments(workspace, model, "asr", tmp_path / "asr"))["best"]
    assert asr["wer"] == 0.0 and asr["cer"] == 0.0 and asr["unfinished"] == 0, asr["examples"]
    tts = finetune(arguments(workspace, model, "tts", tmp_path / "tts", max_steps=150, eval_steps=50))["best"]
    assert tts["unit_error_rate"] == 0.0 and tts["exact_matches"] == len(PHRASES), tts["examples"]
    assert tts["unfinished"] == 0 and tts["unfinished_rate"] == 0.0
    # Generation steps: the baseline spends one global step per unit and one for the end; LST one per patch
    # of `patch_size` units and one for the end.
    lengths = [len(p["units"]) for p in pairs()]
    assert tts["tokens"] == sum(lengths) + len(lengths)
    if model == "lst":
        patch = LSTConfig.from_pretrained(workspace / "lst").patch_size
        assert tts["global_steps"] == sum(math.ceil(n / patch) + 1 for n in lengths)
    else:
        assert tts["global_steps"] == tts["tokens"]


def test_tts_is_scored_through_a_vocoder_and_a_transcriber(workspace, tokenizer, tmp_path):
    from lst_speech.tokenization.vocoder import UnitHifiGanVocoder, UnitVocoderConfig

    torch.manual_seed(0)
    UnitHifiGanVocoder(UnitVocoderConfig.from_preset("tiny", num_units=tokenizer.num_units)).save_pretrained(tmp_path / "vocoder")
    results = finetune(arguments(workspace, "lst", "tts", tmp_path / "run", max_steps=2, eval_steps=2,
                                 vocoder=str(tmp_path / "vocoder")))
    best = results["best"]
    # An untrained vocoder's noise transcribes as anything or nothing; what matters is that it was scored.
    assert 0.0 <= best["vocoded_cer_interval"][0] <= best["vocoded_cer"] and len(best["transcripts"]) == 3
    assert "vocoded CER" in results["best_summary"]


def test_bad_speech_text_requests_are_refused_before_training(workspace, tmp_path):
    with pytest.raises(ValueError, match="asr reads speech"):
        arguments(workspace, "lst", "asr", tmp_path, train_modality="text")
    with pytest.raises(ValueError, match="--vocoder scores TTS output"):
        arguments(workspace, "lst", "asr", tmp_path, vocoder=str(workspace))
    with pytest.raises(ValueError, match="holds the splits"):
        paired_rows(str(workspace / "corpus"))
    (tmp_path / "no_units.jsonl").write_text(json.dumps({"text": "in the beginning"}) + "\n")
    with pytest.raises(ValueError, match="no `units` column"):
        paired_rows(str(tmp_path / "no_units.jsonl"))
    (tmp_path / "empty_text.jsonl").write_text(json.dumps({"id": "e1", "text": " ", "units": [1, 2]}) + "\n")
    with pytest.raises(ValueError, match="'e1' .* has no transcript"):
        paired_rows(str(tmp_path / "empty_text.jsonl"))
