"""The espeak-ng SLUE stand-in, SLUE audio -> units, NER by generation, and the transfer matrix, on tiny models."""

from __future__ import annotations

import json

import datasets
import numpy as np
import peft
import pytest
import torch

from lst_speech.evaluation.slue.data import load_slue, with_units
from lst_speech.evaluation.slue.stand_in import build_slue_stand_in, normalise
from lst_speech.modeling_lst import LSTForCausalLM
from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor
from lst_speech.training.experiments.transfer_matrix import (
    TransferArguments,
    check_unseen,
    markdown_table,
    transfer_matrix,
)
from lst_speech.training.finetuning.adapters import load_finetuned
from lst_speech.training.finetuning.loop import FinetuningArguments, finetune
from lst_speech.training.finetuning.slue_ner import NerTask

SIZES = {"train": 24, "validation": 8, "test": 8}


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    root = tmp_path_factory.mktemp("stand-in")
    statistics = build_slue_stand_in(root, SIZES, seed=0, progress=False)
    return root, statistics


@pytest.fixture(scope="module")
def extractor(stand_in):
    """MFCC units fitted on the stand-in's own training audio (as a user would fit them on their corpus)."""
    import io

    import soundfile

    rows = load_slue("voxceleb", data_files=str(stand_in[0] / "voxceleb" / "train.parquet"))
    audio = [soundfile.read(io.BytesIO(a["bytes"]), dtype="float32")[0] for a in rows["audio"][:12]]
    fitted = MfccUnitExtractor(50).fit(audio, 16000)
    directory = stand_in[0] / "extractor"
    fitted.save_pretrained(directory)
    return directory


def test_the_stand_in_has_the_slue_schema_vader_labels_and_faker_entity_spans(stand_in):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    root, statistics = stand_in
    sentiment = datasets.load_dataset(str(root), "voxceleb", split="validation")
    ner = datasets.load_dataset(str(root), "voxpopuli", split="test")
    assert {"id", "audio", "speaker_id", "normalized_text", "sentiment"} <= set(sentiment.column_names)
    assert {"id", "audio", "raw_text", "normalized_text", "raw_ner", "normalized_ner"} <= set(ner.column_names)
    assert (len(sentiment), len(ner)) == (SIZES["validation"], SIZES["test"])
    analyzer = SentimentIntensityAnalyzer()
    for row in sentiment:
        compound = analyzer.polarity_scores(row["normalized_text"])["compound"]
        expected = "Positive" if compound >= 0.05 else "Negative" if compound <= -0.05 else "Neutral"
        assert row["sentiment"] == expected, row["normalized_text"]
    for row in ner:
        spans = row["normalized_ner"]
        assert set(spans["type"]) <= {"PERSON", "GPE", "ORG", "DATE"}
        raw = row["raw_ner"]
        for start, length, raw_start, raw_length in zip(spans["start"], spans["length"], raw["start"], raw["length"]):
            assert row["normalized_text"][start:start + length] == normalise(row["raw_text"][raw_start:raw_start + raw_length])
        assert row["normalized_text"] == normalise(row["raw_text"])
    card = (root / "README.md").read_text()
    assert "vaderSentiment" in card and "Faker" in card and "config_name: voxpopuli" in card
    assert statistics["voxceleb"]["train"]["rows"] == SIZES["train"]


def test_slue_audio_becomes_units_once_then_comes_from_the_cache(stand_in, extractor):
    from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor

    path = str(stand_in[0] / "voxceleb" / "validation.parquet")
    units = with_units(load_slue("voxceleb", data_files=path), load_unit_extractor(extractor))
    first = units[0]
    duration = first["end_second"] - first["start_second"]
    assert abs(len(first["units"]) - 50 * duration) <= 2  # 50 Hz units of the whole utterance
    assert max(max(u) for u in units["units"]) < 50

    def no_extraction(*_, **__):
        raise AssertionError("units were extracted again instead of read from the datasets cache")

    again = load_unit_extractor(extractor)
    again.features = no_extraction
    assert with_units(load_slue("voxceleb", data_files=path), again)["units"] == units["units"]


def test_slue_audio_from_local_files_resampled_and_bad_audio_named(tmp_path, extractor):
    import soundfile

    from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor

    rng = np.random.default_rng(0)
    soundfile.write(tmp_path / "a.wav", (0.1 * rng.standard_normal(22050)).astype(np.float32), 22050)
    rows = [{"id": "a", "audio": "a.wav", "normalized_text": "x", "sentiment": "Neutral"}]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = datasets.load_dataset("json", data_files=str(tmp_path / "rows.jsonl"), split="train")
    dataset = dataset.cast_column("audio", datasets.Audio(decode=False))
    units = with_units(dataset, load_unit_extractor(extractor), base_directory=tmp_path)["units"][0]
    assert abs(len(units) - 50) <= 1  # one second at 22.05 kHz, resampled to 16 kHz, at 50 Hz
    with pytest.raises(ValueError, match="has no `audio` column"):
        with_units(dataset.remove_columns("audio"), load_unit_extractor(extractor))
    (tmp_path / "a.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError, match="Cannot read .*a.wav"):
        with_units(dataset, load_unit_extractor(extractor), base_directory=tmp_path)


def test_ner_targets_mask_the_prompt_and_hand_made_outputs_score_as_slue_does(tokenizer):
    task = NerTask("raw")
    row = {"id": "n1", "text": "anna met bob in paris", "tagged": "} anna ] met } bob ] in % paris ]",
           "units": [3, 4, 5, 6]}
    for modality in ("text", "speech"):
        example = task.encode([row], tokenizer, modality, 2048)[0]
        prompt = example["prompt_ids"]
        assert prompt[-1] == tokenizer.text_marker_id
        assert example["labels"][:len(prompt)] == [-100] * len(prompt)
        target = example["labels"][len(prompt):]
        assert target[-1] == tokenizer.eos_token_id
        assert tokenizer.decode_segments(prompt[-1:] + target) == [row["tagged"]]  # tags survive the tokenizer
    scores = task.score(["} anna ] met bob in % paris ]", "nothing here"],
                        [row["tagged"], "the ` un ] met on @ monday ]"])
    # pairs: predicted {PERSON anna, GPE paris}, gold {PERSON anna, PERSON bob, GPE paris, ORG un, DATE monday}
    assert scores["precision"] == 1.0 and scores["recall"] == pytest.approx(2 / 5)
    assert scores["combined_f1"] == pytest.approx(2 * (2 / 5) / (1 + 2 / 5))
    assert scores["f1_ci95"][0] <= scores["f1"] <= scores["f1_ci95"][1]


def test_every_target_the_formatter_writes_reads_back_as_its_spans():
    from lst_speech.evaluation.slue.data import slue_ner_format

    ner = slue_ner_format()
    rng = np.random.default_rng(0)
    tags = sorted(ner.RAW_TAG_CHARACTERS)
    for _ in range(300):
        words = [f"w{i}" for i in range(int(rng.integers(1, 12)))]
        starts = np.cumsum([0] + [len(w) + 1 for w in words])  # each word's character offset in the text
        text, spans, located, word = " ".join(words), [], [], 0
        while word < len(words):  # entities of 1-3 words, adjacent or apart
            length = int(rng.integers(1, 4))
            if rng.random() < 0.5 and word + length <= len(words):
                phrase, tag = " ".join(words[word:word + length]), str(rng.choice(tags))
                spans.append((tag, phrase))
                located.append((tag, int(starts[word]), len(phrase)))
                word += length
            else:
                word += 1
        for label_set in ("raw", "combined"):
            target = ner.tagged_text(text, located, label_set)
            assert ner.read_entities(target)[1] == {}, target  # well-formed: no rule fires
            assert ner.parse_tagged_text(target, label_set) == ner.labelled(spans, label_set), target


def ner_arguments(stand_in, bases, output_dir, **overrides) -> FinetuningArguments:
    root = stand_in[0] / "voxpopuli"
    values = dict(model_name_or_path=str(bases / "lst"), task="slue-ner", train_data=str(root / "train.parquet"),
                  validation_data=str(root / "validation.parquet"), output_dir=str(output_dir), max_steps=6,
                  eval_steps=3, per_device_batch_size=8, learning_rate=3e-3, warmup_steps=1, lora_dropout=0.0,
                  max_new_tokens=12)
    return FinetuningArguments(**{**values, **overrides})


def test_ner_fine_tunes_by_generation_and_the_adapter_generates_like_its_merge(stand_in, bases, extractor, tmp_path):
    args = ner_arguments(stand_in, bases, tmp_path / "ner", train_modality="speech", eval_modality="speech",
                         unit_extractor=str(extractor), merge=True)
    results = finetune(args)
    best = results["best"]
    assert {"f1", "label_f1", "combined_f1", "f1_ci95", "unfinished"} <= set(best)
    assert results["modalities_seen"] == ["speech"] and len(best["examples"]) == 3
    # generate through PeftModel (its prepare_inputs_for_generation path) = generate with the merged weights
    adapted, tokenizer = load_finetuned(NerTask(), tmp_path / "ner" / "best")
    assert isinstance(adapted, peft.PeftModel)
    merged = LSTForCausalLM.from_pretrained(tmp_path / "ner" / "best-merged")
    task = NerTask(max_new_tokens=12)
    examples = task.encode([{"id": "x", "text": "anna met bob in paris", "tagged": "} anna ]", "units": None}],
                           tokenizer, "text", 2048)
    with torch.no_grad():
        assert task.generate(adapted.eval(), tokenizer, examples) == task.generate(merged.eval(), tokenizer, examples)


@pytest.mark.slow
def test_transfer_matrix_fills_four_cells_per_model_and_refuses_a_leak(stand_in, bases, extractor, tmp_path):
    with pytest.raises(ValueError, match="would not be zero-shot"):
        TransferArguments(output_dir=str(tmp_path), models=[f"lst={bases / 'lst'}"], data_dir=str(stand_in[0]),
                          selection_modality="speech")
    args = TransferArguments(output_dir=str(tmp_path / "matrix"), models=[f"lst={bases / 'lst'}",
                                                                           f"llama={bases / 'llama'}"],
                             data_dir=str(stand_in[0]), unit_extractor=str(extractor), max_steps=4, eval_steps=2,
                             per_device_batch_size=8, learning_rate=3e-3, warmup_steps=1)
    report = transfer_matrix(args)
    cells = {(c["model"], c["train_modality"], c["test_modality"]): c for c in report["cells"]}
    assert len(cells) == 8
    for (model, train, test), cell in cells.items():
        assert cell["zero_shot"] == (train != test) and cell["selected_on"] == train
        assert cell["test_rows"] == SIZES["test"] and 0 <= cell["scores"]["macro_f1"] <= 1
        assert cell["trainable_parameters"] > 0 and cell["train_seconds"] > 0
    table = (tmp_path / "matrix" / "transfer.md").read_text()
    assert table == markdown_table(report) and table.count(" * |") == 4
    assert json.loads((tmp_path / "matrix" / "transfer.json").read_text())["cells"] == json.loads(
        json.dumps(report["cells"]))
    # The cells go into a model card as model-index results.
    from huggingface_hub import ModelCard

    from lst_speech.model_cards.model_card import model_card

    facts = json.loads((tmp_path / "matrix" / "card_facts-lst.json").read_text())
    card = ModelCard(str(model_card({"name": "lst-tiny", "model_type": "lst", "parameters": {"total": 1}, **facts})))
    assert sorted((r.dataset_config, r.metric_value) for r in card.data.eval_results) == sorted(
        (f"{train}->{test}", round(c["scores"]["macro_f1"], 4)) for (m, train, test), c in cells.items() if m == "lst")
    # A second call reuses the finished runs (an interrupted matrix, or another model, adds to them).
    again = transfer_matrix(args)
    assert [c["train_seconds"] for c in again["cells"]] == [c["train_seconds"] for c in report["cells"]]
    # So are runs recorded before fine-tuning had --report_to (the tracker changes nothing that is trained).
    for finished in (tmp_path / "matrix").glob("*/train-*/results.json"):
        record = json.loads(finished.read_text())
        record["arguments"].pop("report_to")
        finished.write_text(json.dumps(record))
    again = transfer_matrix(args)
    assert [c["train_seconds"] for c in again["cells"]] == [c["train_seconds"] for c in report["cells"]]
    # A run whose record shows it saw the test modality is refused as a zero-shot cell.
    results = json.loads((tmp_path / "matrix" / "lst" / "train-text" / "results.json").read_text())
    with pytest.raises(AssertionError, match="not zero-shot"):
        check_unseen({**results, "modalities_seen": ["speech", "text"]}, "speech", "lst/train-text")
