"""Artefacts that do not belong together are refused before any work, with one error naming both sides: a
tokenizer whose joint id layout differs from the model's (same vocabulary size), an extractor or a vocoder of
another unit count than the model's."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch
from transformers import LlamaConfig

from lst_speech.evaluation.loading import load_model_and_tokenizer
from lst_speech.model_cards.release import export_release
from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.modeling_lst.pairing import check_tokenizer_matches_model, layout_differences
from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor
from lst_speech.tokenization.vocoder import UnitHifiGanVocoder, UnitVocoderConfig
from lst_speech.training.cli.main import main


def shifted_layout_config(tokenizer) -> LSTConfig:
    """The tokenizer's vocabulary size, with 20 more text pieces and 20 fewer speech tokens."""
    layout = tokenizer.vocabulary_layout()
    text_start, text_stop = layout["text_token_range"]
    speech_start, speech_stop = layout["speech_token_range"]
    return LSTConfig.from_tokenizer(tokenizer, preset="tiny", text_token_range=[text_start, text_stop + 20],
                                    text_marker_id=layout["text_marker_id"] + 20,
                                    speech_marker_id=layout["speech_marker_id"] + 20,
                                    speech_token_range=[speech_start + 20, speech_stop])


@pytest.fixture(scope="module")
def mismatched_model(tokenizer, tmp_path_factory):
    """A saved model whose config layout is not its tokenizer's, at the same vocabulary size."""
    directory = tmp_path_factory.mktemp("pairing") / "model"
    torch.manual_seed(0)
    LSTForCausalLM(shifted_layout_config(tokenizer)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_the_differences_are_listed_field_by_field(tokenizer):
    config = shifted_layout_config(tokenizer)
    assert config.vocab_size == len(tokenizer)
    differences = layout_differences(config, tokenizer.vocabulary_layout())
    assert [d.split()[0] for d in differences] == ["text_token_range", "speech_token_range", "text_marker_id",
                                                   "speech_marker_id"]
    assert layout_differences(LSTConfig.from_tokenizer(tokenizer, preset="tiny"), tokenizer.vocabulary_layout()) == []
    # A Llama baseline records the size and the special ids only.
    baseline = LSTConfig.from_tokenizer(tokenizer, preset="tiny").global_llama_config()
    check_tokenizer_matches_model(baseline, tokenizer, "baseline", "tokenizer")
    with pytest.raises(ValueError, match=r"vocab_size 900 in the model, \d+ in the tokenizer"):
        check_tokenizer_matches_model(LlamaConfig(vocab_size=900), tokenizer, "baseline", "tokenizer")


def test_a_model_and_a_tokenizer_of_different_layouts_do_not_load_together(mismatched_model):
    with pytest.raises(ValueError, match=r"does not belong to the model .*text_token_range \[\d+, \d+\] in the model"):
        load_model_and_tokenizer(mismatched_model)


def test_lst_generate_refuses_the_pair_in_one_line(mismatched_model, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--model", str(mismatched_model), "--text", "In the beginning", "--max_new_tokens", "2"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in error
    last_line = error.rstrip("\n").split("\n")[-1]  # after the weight loader's progress bar
    assert last_line.startswith("lst generate: error: The tokenizer") and "speech_token_range" in last_line


def test_export_refuses_the_pair_before_writing(mismatched_model, tmp_path):
    with pytest.raises(ValueError, match="does not belong to the model"):
        export_release(mismatched_model, tmp_path / "release")
    assert not (tmp_path / "release").exists()


@pytest.fixture(scope="module")
def matched_model(tokenizer, tmp_path_factory):
    directory = tmp_path_factory.mktemp("pairing") / "model"
    torch.manual_seed(0)
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_an_audio_prompt_from_an_extractor_of_other_units_is_refused(matched_model, tokenizer, tmp_path, capsys):
    rng = np.random.default_rng(0)
    waveform = rng.normal(size=16000).astype(np.float32)
    MfccUnitExtractor(num_units=9).fit([waveform], 16000).save_pretrained(tmp_path / "extractor")
    soundfile.write(str(tmp_path / "prompt.wav"), waveform, 16000)
    with pytest.raises(SystemExit):
        main(["generate", "--model", str(matched_model), "--audio", str(tmp_path / "prompt.wav"), "--extractor",
              str(tmp_path / "extractor"), "--max_new_tokens", "2"])
    error = capsys.readouterr().err
    assert f"makes 9 units but the model {matched_model} reads {tokenizer.num_units}" in error


def test_a_vocoder_of_other_units_is_refused_before_generating(matched_model, tokenizer, tmp_path, capsys):
    UnitHifiGanVocoder(UnitVocoderConfig.from_preset("tiny", num_units=tokenizer.num_units + 3)).save_pretrained(
        tmp_path / "vocoder")
    with pytest.raises(SystemExit):
        main(["generate", "--model", str(matched_model), "--text", "In the beginning", "--output_modality", "speech",
              "--vocoder", str(tmp_path / "vocoder"), "--wav", str(tmp_path / "out.wav"), "--max_new_tokens", "2"])
    error = capsys.readouterr().err
    assert f"speaks {tokenizer.num_units + 3} units but the model {matched_model} writes {tokenizer.num_units}" in error
    assert not (tmp_path / "out.wav").exists()


def test_an_adapter_is_exported_only_onto_the_base_it_was_trained_on(tokenizer, tmp_path):
    import peft

    from lst_speech.modeling_lst import LSTForSequenceClassification
    from lst_speech.modeling_lst.pairing import BASE_RECORD, base_fingerprint, base_record
    from lst_speech.training.checkpoints import save_pretrained_atomically
    from lst_speech.training.finetuning.lora_presets import lora_config

    for seed, name in ((0, "base"), (1, "other")):
        torch.manual_seed(seed)
        base = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny"))
        save_pretrained_atomically(base, tokenizer, tmp_path / name, with_code=True, owner="test")
    classifier = LSTForSequenceClassification.from_pretrained(tmp_path / "base", num_labels=3)
    record = base_record(tmp_path / "base", base_fingerprint(classifier))  # before peft wraps its layers
    adapted = peft.get_peft_model(classifier, lora_config("lst", "global", "classification"))
    save_pretrained_atomically(adapted, tokenizer, tmp_path / "adapter", {BASE_RECORD: record}, owner="test")
    with pytest.raises(ValueError, match=r"trained on another base model than --base_repo_id .*other"):
        export_release(tmp_path / "adapter", tmp_path / "release", base_repo_id=str(tmp_path / "other"))
    assert not (tmp_path / "release").exists()
    export_release(tmp_path / "adapter", tmp_path / "release", base_repo_id=str(tmp_path / "base"))
    assert (tmp_path / "release" / "adapter_model.safetensors").is_file()


def test_a_vocoder_run_resumes_only_with_the_extractor_its_units_came_from(tmp_path):
    import json

    from lst_speech.training.vocoder.train_vocoder import DATA_EXTRACTOR, check_data_extractor

    rng = np.random.default_rng(0)
    audio = [rng.normal(size=16000).astype(np.float32)]
    first, second = MfccUnitExtractor(num_units=8).fit(audio, 16000, seed=0), MfccUnitExtractor(num_units=8)
    second.fit([rng.normal(size=16000).astype(np.float32)], 16000, seed=1)
    assert first.fingerprint() != second.fingerprint()  # one unit count, numbered differently
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with pytest.raises(ValueError, match=f"without {DATA_EXTRACTOR} .*train into a new --output_dir"):
        check_data_extractor(data_dir, first, tmp_path / "first")
    (data_dir / DATA_EXTRACTOR).write_text(json.dumps({"extractor": str(tmp_path / "first"),
                                                       "fingerprint": first.fingerprint()}))
    check_data_extractor(data_dir, first, tmp_path / "first")
    with pytest.raises(ValueError, match=r"made with the extractor .*first, not with .*second: resume with"):
        check_data_extractor(data_dir, second, tmp_path / "second")


def test_packed_data_records_its_tokenizer_and_pretraining_compares_it(tokenizer, sample_verses, tmp_path):
    import json

    from lst_speech.training.data.checks import LAYOUT_FILE, check_data_tokenizer

    import datasets

    tokenizer.save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "verses.txt").write_text("\n".join(sample_verses[:40]) + "\n")
    rng = np.random.default_rng(0)
    paired = []
    for verse in sample_verses[40:60]:  # stand-in speech: a few units per word
        words = verse.split()
        spans = [[3 * i, 3 * i + 3] for i in range(len(words))]
        paired.append({"text": verse, "words": words, "word_spans": spans,
                       "units": rng.integers(0, tokenizer.num_units, 3 * len(words)).tolist()})
    datasets.Dataset.from_list(paired).save_to_disk(str(tmp_path / "paired"))
    main(["data", "--recipe", "lst", "--tokenizer", str(tmp_path / "tokenizer"), "--text",
          str(tmp_path / "verses.txt"), "--paired", str(tmp_path / "paired"), "--output", str(tmp_path / "packed"),
          "--sequence_length", "64"])
    recorded = json.loads((tmp_path / "packed" / LAYOUT_FILE).read_text())
    assert recorded == json.loads(json.dumps(tokenizer.vocabulary_layout()))
    check_data_tokenizer(tmp_path / "packed", tokenizer)
    shifted = {**recorded, "speech_marker_id": recorded["speech_marker_id"] + 1}
    (tmp_path / "packed" / LAYOUT_FILE).write_text(json.dumps(shifted))
    with pytest.raises(ValueError, match=r"packed was built with another tokenizer than --tokenizer \(speech_marker_id "
                                         r"\d+ in the data, \d+ in the tokenizer\)"):
        check_data_tokenizer(tmp_path / "packed", tokenizer)
