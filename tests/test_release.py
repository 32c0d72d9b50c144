"""Releases (lst_speech.model_cards.release): what `lst export` writes loads without the package; cards carry the run's numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from transformers import LlamaForCausalLM

from lst_speech.model_cards.release import export_release, push_release, upload_plan
from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor
from lst_speech.training.checkpoints import save_pretrained_atomically

from test_remote_code import BLOCK_PROJECT  # tests/ is on sys.path (pytest's prepend import mode)


def fake_run(root, model, tokenizer):
    """A pretraining output_dir as pretrain.py leaves it: final/ with code, log, held-out loss, run record."""
    save_pretrained_atomically(model, tokenizer, root / "final", with_code=True, owner="test")
    rows = [{"step": s, "loss": 5.0 - s, "tokens_per_second": 100.0, "window_seconds": 2.0, "tokens": 200.0,
             "flops": 1e9} for s in (1, 2, 3)]
    (root / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "eval_results.json").write_text(json.dumps({"loss": 3.25, "loss_text": 4.5, "loss_speech": 2.0}))
    (root / "run.json").write_text(json.dumps({"preset": "tiny", "hardware": "CPU (test)", "num_processes": 1}))
    return root


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    directory = tmp_path_factory.mktemp("extractor")
    rng = np.random.default_rng(0)
    MfccUnitExtractor(50).fit([(0.1 * rng.standard_normal(16000)).astype(np.float32)], 16000).save_pretrained(directory)
    return directory


def load_without_the_package(folder, ids, causal_class="AutoModelForCausalLM"):
    script = BLOCK_PROJECT + textwrap.dedent(f"""
        import json, torch
        from transformers import AutoConfig, AutoModel, AutoTokenizer, {causal_class}
        config = AutoConfig.from_pretrained({str(folder)!r}, trust_remote_code=True)
        tokenizer = AutoTokenizer.from_pretrained({str(folder)!r}, trust_remote_code=True)
        base = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True)
        model = {causal_class}.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        ids = torch.tensor([{ids!r}])
        with torch.no_grad():
            logits = model(ids).logits[0, -1].tolist()
            generated = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0)[0].tolist()
        print(json.dumps({{"config": type(config).__name__, "tokenizer": type(tokenizer).__name__,
                          "base": type(base).__name__, "logits": logits, "generated": generated}}))
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=folder,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def speech_through_auto_classes(release, extractor, tokenizer, tmp_path):
    """AutoFeatureExtractor and AutoProcessor from the release, without the package, give the units and the ids
    that the saved extractor and the tokenizer give here (audio at 22.05 kHz, resampled by the extractor)."""
    from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor

    rng = np.random.default_rng(1)
    waveform = (0.1 * rng.standard_normal(22050)).astype(np.float32)
    np.save(tmp_path / "waveform.npy", waveform)
    units = load_unit_extractor(extractor)(waveform, 22050)
    expected_ids = tokenizer(segments=[units, "In the beginning"])["input_ids"]
    script = BLOCK_PROJECT + textwrap.dedent(f"""
        import json, numpy as np
        from transformers import AutoFeatureExtractor, AutoProcessor
        waveform = np.load({str(tmp_path / "waveform.npy")!r})
        features = AutoFeatureExtractor.from_pretrained({str(release)!r}, trust_remote_code=True)
        processor = AutoProcessor.from_pretrained({str(release)!r}, trust_remote_code=True)
        print(json.dumps({{"extractor": type(features).__name__, "processor": type(processor).__name__,
                          "units": features(waveform, sampling_rate=22050)["units"].tolist(),
                          "ids": processor(audio=waveform, sampling_rate=22050, text="In the beginning")["input_ids"]}}))
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert (output["extractor"], output["processor"]) == ("UnitFeatureExtractor", "SpeechTextProcessor")
    assert output["units"] == units.tolist() and output["ids"] == expected_ids


def reference(model, ids):
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1].tolist()
        generated = model.generate(torch.tensor([ids]), max_new_tokens=6, do_sample=False, pad_token_id=0)[0].tolist()
    return logits, generated


@pytest.mark.slow
def test_an_lst_release_loads_without_the_package_sharded_with_its_card_and_extractor(tokenizer, tmp_path, extractor):
    torch.manual_seed(0)
    model = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).eval()
    run = fake_run(tmp_path / "run", model, tokenizer)
    facts = {"evaluation": {"topic_cloze": {"S->S": {"accuracy": 0.61, "ci95": [0.54, 0.68], "num_items": 200}}},
             "data": {"speech:text tokens (realised)": "0.50 : 1"}}
    release = export_release(run, tmp_path / "release", extractor, facts, repo_id="org/lst-tiny",
                             max_shard_size="100KB")
    shards = sorted(p.name for p in release.glob("*.safetensors"))
    assert len(shards) > 1 and (release / "model.safetensors.index.json").is_file()
    assert (release / "extractor" / "centroids.npy").is_file() and (release / "generation_config.json").is_file()
    assert json.loads((release / "config.json").read_text())["auto_map"]["AutoModelForSequenceClassification"]

    card = ModelCard.load(release / "README.md")
    scores = {(r.task_name, r.dataset_config, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert scores[("held-out loss", None, "held-out loss (nats per token)")] == 3.25
    assert scores[("topic cloze S->S", "S->S", "S->S accuracy (context gain; 95% CI 0.540-0.680, 200 items)")] == 0.61
    text = (release / "README.md").read_text()
    for fact in ("| total | ", "**steps**: 3", "**tokens**: 600", "**training FLOPs (accounting, 3 x forward)**: "
                 "9,000,000,000", "CPU (test)", "0.50 : 1", "arXiv:2510.06195", "arXiv:2310.08715",
                 'from_pretrained("org/lst-tiny"'):
        assert fact in text, fact

    ids = tokenizer(segments=["In the beginning", np.arange(10) % 50])["input_ids"]
    logits, generated = reference(model, ids)
    loaded = load_without_the_package(release, ids)
    speech_through_auto_classes(release, extractor, tokenizer, tmp_path)
    assert (loaded["config"], loaded["tokenizer"], loaded["base"]) == ("LSTConfig", "SpeechUnitTextTokenizer",
                                                                       "LSTModel")
    np.testing.assert_allclose(loaded["logits"], logits, atol=1e-5)
    assert loaded["generated"] == generated


@pytest.mark.slow
def test_a_baseline_release_and_a_pretraining_final_load_without_the_package(tokenizer, tmp_path):
    torch.manual_seed(0)
    model = LlamaForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny").global_llama_config()).eval()
    run = fake_run(tmp_path / "run", model, tokenizer)
    ids = tokenizer(segments=["In the beginning", np.arange(6) % 50])["input_ids"]
    logits, generated = reference(model, ids)
    for folder in (run / "final", export_release(run, tmp_path / "release")):
        loaded = load_without_the_package(folder, ids)
        assert (loaded["tokenizer"], loaded["base"]) == ("SpeechUnitTextTokenizer", "LlamaModel")
        np.testing.assert_allclose(loaded["logits"], logits, atol=1e-5)
        assert loaded["generated"] == generated
    card = ModelCard.load(tmp_path / "release" / "README.md")
    assert "llama" in card.data.tags and card.data.eval_results[0].metric_value == 3.25


def test_bad_input_is_refused_before_anything_is_written_or_uploaded(tokenizer, tmp_path):
    with pytest.raises(ValueError, match="is not a trained run"):
        export_release(tmp_path, tmp_path / "out")
    model = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny"))
    model.resize_token_embeddings(len(tokenizer) + 8)
    save_pretrained_atomically(model, tokenizer, tmp_path / "mismatch", owner="test")
    sizes = f"vocab_size {len(tokenizer) + 8} in the model, {len(tokenizer)} in the tokenizer"
    with pytest.raises(ValueError, match=sizes):
        export_release(tmp_path / "mismatch", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="is not a release folder"):
        push_release(tmp_path / "mismatch", "org/name", dry_run=True)


def test_push_checks_the_repo_id_and_dry_run_lists_the_upload(tokenizer, tmp_path):
    model = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny"))
    save_pretrained_atomically(model, tokenizer, tmp_path / "model", with_code=True, owner="test")
    release = export_release(tmp_path / "model", tmp_path / "release", repo_id="org/lst-tiny")
    for bad in ("lst-tiny", "org/", "org/name/extra", "org/na me"):
        with pytest.raises(ValueError, match="must be 'org/name'"):
            upload_plan(release, bad)
    plan = push_release(release, "org/lst-tiny", private=True, revision="v1", dry_run=True)
    files = {f["path"] for f in plan["files"]}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "modeling_lst.py"} <= files
    assert (plan["repo_id"], plan["private"], plan["revision"]) == ("org/lst-tiny", True, "v1")
    assert plan["card"]["model_name"] == "lst-tiny"


def test_loading_a_preset_name_says_that_presets_are_configurations(tmp_path):
    from lst_speech.modeling_lst import LSTForCausalLM as Model

    for load in (LSTConfig.from_pretrained, Model.from_pretrained):
        with pytest.raises(OSError, match=r"(?s)org/lst-350m.*local directory.*presets, which are configurations.*"
                                          r"preset='lst-350m'.*lst export"):
            load("org/lst-350m")
        with pytest.raises(OSError) as raised:
            load("org/some-other-model")
        assert "local directory" in str(raised.value) and "preset" not in str(raised.value)
        with pytest.raises(OSError, match="There is no directory .*reads as a local path"):
            load(str(tmp_path / "missing" / "model"))


@pytest.mark.slow
def test_a_lora_adapter_release_loads_onto_its_base_release_without_the_package(tokenizer, tmp_path):
    import peft

    from lst_speech.modeling_lst import LSTForSequenceClassification
    from lst_speech.modeling_lst.pairing import BASE_RECORD, base_fingerprint, base_record
    from lst_speech.training.finetuning.lora_presets import lora_config

    torch.manual_seed(0)
    base = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny"))
    save_pretrained_atomically(base, tokenizer, tmp_path / "base", with_code=True, owner="test")
    base_release = export_release(tmp_path / "base", tmp_path / "base-release")
    classifier = LSTForSequenceClassification.from_pretrained(tmp_path / "base", num_labels=3)
    fingerprint = base_fingerprint(classifier)
    adapted = peft.get_peft_model(classifier, lora_config("lst", "global", "classification"))
    with torch.no_grad():
        for name, parameter in adapted.named_parameters():
            if "lora_B" in name:
                parameter.normal_()  # a trained-looking adapter: a zero lora_B would change nothing
    save_pretrained_atomically(adapted, tokenizer, tmp_path / "adapter",
                               {BASE_RECORD: base_record(tmp_path / "base", fingerprint)}, owner="test")
    with pytest.raises(ValueError, match="pass --base_repo_id"):
        export_release(tmp_path / "adapter", tmp_path / "adapter-release")
    release = export_release(tmp_path / "adapter", tmp_path / "adapter-release", base_repo_id=str(base_release),
                             repo_id="org/lst-tiny-sa")
    assert json.loads((release / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base_release)
    card = ModelCard.load(release / "README.md")
    assert card.data.base_model == str(base_release) and card.data.library_name == "peft"
    assert "PeftModel.from_pretrained(base, \"org/lst-tiny-sa\")" in (release / "README.md").read_text()
    assert push_release(release, "org/lst-tiny-sa", dry_run=True)["files"]

    ids = tokenizer(segments=["In the beginning", np.arange(6) % 50])["input_ids"]
    with torch.no_grad():
        expected = adapted.eval()(input_ids=torch.tensor([ids])).logits[0].tolist()
    script = BLOCK_PROJECT + textwrap.dedent(f"""
        import json, torch
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification
        base = AutoModelForSequenceClassification.from_pretrained({str(base_release)!r}, num_labels=3,
                                                                  trust_remote_code=True)
        model = PeftModel.from_pretrained(base, {str(release)!r}).eval()
        with torch.no_grad():
            print(json.dumps(model(input_ids=torch.tensor([{ids!r}])).logits[0].tolist()))
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(json.loads(result.stdout.strip().splitlines()[-1]), expected, atol=1e-5)
