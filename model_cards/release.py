"""Releases: a trained run as a Hub-ready folder (`lst export`), and that folder uploaded (`lst push`).

    lst export outputs/main_job/lst --output_dir release/ --extractor outputs/main_job/extractor --repo_id org/lst-small
    lst push release/ --repo_id org/lst-small [--private] [--revision BRANCH] [--create_pr] [--dry_run]

A release holds safetensors weights (sharded above `--max_shard_size`), `config.json` and the tokenizer with
their `auto_map` and the code they need (so `AutoModel*` and `AutoTokenizer` load it with
`trust_remote_code=True` where this package is not installed; the Llama baseline's model is a transformers
architecture and needs no code, its tokenizer does), `generation_config.json`, the unit extractor in
`extractor/`, and a model card (lst_speech.model_cards.model_card). The folder is built beside its destination and
renamed into place when complete; it replaces only an earlier release, and never lies inside what it is made from
or holds it (`lst_speech.tokenization.output_safety`). Uploading is `huggingface_hub`'s `create_repo` + `upload_folder`;
everything decided before that (what is uploaded, where, the card's metadata) is checked first and is what
`--dry_run` prints.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from pathlib import Path

from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

import lst_speech.modeling_lst  # noqa: F401  (registers LST with the Auto classes)
import lst_speech.tokenization  # noqa: F401  (registers the joint tokenizer)
from lst_speech.model_cards.model_card import model_card, run_facts
from lst_speech.modeling_lst.accounting import parameter_counts
from lst_speech.modeling_lst.export import (
    save_processor_with_remote_code,
    save_tokenizer_with_remote_code,
    save_with_remote_code,
)
from lst_speech.modeling_lst.pairing import BASE_RECORD, check_adapter_base, check_tokenizer_matches_model
from lst_speech.tokenization.atomic_files import atomic_directory
from lst_speech.tokenization.output_safety import MARKER, check_apart, check_replaceable
from lst_speech.tokenization.processing_lst import SpeechTextProcessor
from lst_speech.tokenization.speech.unit_extraction import CENTROIDS_FILE, CONFIG_FILE, load_unit_extractor

logger = logging.getLogger("lst.release")
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
RELEASE_FILES = ("tokenizer.json", "tokenizer_config.json", "README.md")
OWNER = "lst export"


def _model_directory(path: Path) -> tuple[Path, Path | None]:
    """(the saved model, the run directory that trained it or None) for a run's output_dir or a model dir."""
    if (path / "final" / "config.json").is_file():
        return path / "final", path
    if (path / "config.json").is_file():
        run = path.parent if (path.parent / "log.jsonl").is_file() else None
        return path, run
    raise ValueError(f"{path} is not a trained run: expected a pretraining output_dir (with final/) or a model "
                     "directory written by save_pretrained (with config.json).")


def _load(model_dir: Path):
    architecture = (AutoConfig.from_pretrained(model_dir).architectures or ["ForCausalLM"])[0]
    auto = AutoModelForSequenceClassification if architecture.endswith("ForSequenceClassification") else \
        AutoModelForCausalLM
    return auto.from_pretrained(model_dir)


def export_release(source: str | os.PathLike, output_dir: str | os.PathLike, extractor: str | os.PathLike | None = None,
                   facts: dict | None = None, repo_id: str | None = None, max_shard_size: str = "2GB",
                   base_repo_id: str | None = None) -> Path:
    """Write the release of `source` (a pretraining run's output_dir, a saved model, or a fine-tuned LoRA adapter,
    which needs `base_repo_id`) to `output_dir`, apart from the source and the extractor. `facts` add to what the
    run recorded (data recipe, evaluation results) in the card. Returns `output_dir`."""
    if (Path(source) / "adapter_config.json").is_file():
        return export_adapter_release(source, output_dir, base_repo_id, facts, repo_id)
    model_dir, run_dir = _model_directory(Path(source))
    _check_output(output_dir, source, extractor=extractor)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = _load(model_dir)
    check_tokenizer_matches_model(model.config, tokenizer, model_dir, model_dir)
    if extractor is not None and not (Path(extractor) / CONFIG_FILE).is_file():
        raise ValueError(f"{extractor} is not a saved unit extractor (no {CONFIG_FILE}).")
    output_dir = Path(output_dir)
    with atomic_directory(output_dir, OWNER) as partial:
        _write_release(partial, model, tokenizer, extractor, max_shard_size, run_dir, model_dir, facts, repo_id)
    logger.info("release written to %s", output_dir)
    return output_dir


def _check_output(output_dir, source, extractor=None, base_repo_id=None) -> None:
    """Before anything is loaded: the release goes apart from what it is made of, and only over an earlier one."""
    check_apart(("--output_dir", output_dir), ("source", source), ("--extractor", extractor),
                ("--base_repo_id", base_repo_id))
    check_replaceable(output_dir, OWNER)


def _write_release(partial: Path, model, tokenizer, extractor, max_shard_size, run_dir, model_dir, facts, repo_id):
    if model.config.model_type == "lst":
        save_with_remote_code(model, partial, tokenizer=tokenizer, max_shard_size=max_shard_size)
    else:
        model.save_pretrained(partial, max_shard_size=max_shard_size)
        save_tokenizer_with_remote_code(tokenizer, partial)
    if extractor is not None:
        (partial / "extractor").mkdir()
        for name in (CONFIG_FILE, CENTROIDS_FILE):
            shutil.copy2(Path(extractor) / name, partial / "extractor" / name)
        # AutoFeatureExtractor / AutoProcessor from the same repo id: the extractor as a transformers feature
        # extractor (preprocessor_config.json + unit_centroids.npy) and the processor over it and the tokenizer.
        save_processor_with_remote_code(SpeechTextProcessor(load_unit_extractor(extractor), tokenizer), partial)
    card_facts = run_facts(run_dir) if run_dir is not None else {}
    for key, value in (facts or {}).items():  # nested sections merge, so callers add to what the run recorded
        card_facts[key] = {**card_facts.get(key, {}), **value} if isinstance(value, dict) else value
    card_facts.update(name=card_facts.get("name", repo_id.split("/")[-1] if repo_id else model_dir.parent.name),
                      model_type=model.config.model_type, repo_id=repo_id,
                      preset=card_facts.get("preset"),  # recorded by the run (run.json); configs do not carry it
                      parameters=parameter_counts(model) if model.config.model_type == "lst" else
                      {"total": sum(p.numel() for p in model.parameters())},
                      tokenizer=tokenizer.vocabulary_layout() if hasattr(tokenizer, "vocabulary_layout") else None)
    model_card(card_facts).save(partial / "README.md")


ADAPTER_FILES = ("adapter_model.safetensors", BASE_RECORD)


def export_adapter_release(source: str | os.PathLike, output_dir: str | os.PathLike, base_repo_id: str | None,
                           facts: dict | None = None, repo_id: str | None = None) -> Path:
    """A fine-tuned LoRA adapter (lst_speech.training.finetuning.finetune's best/) as a release: its weights, the tokenizer with
    code, an `adapter_config.json` whose base is `base_repo_id` (the base's release: a repo id or a folder), and a
    card. peft's `PeftModel.from_pretrained` loads it onto that base; `load_finetuned` also checks the base."""
    source = Path(source)
    if not base_repo_id:
        raise ValueError(f"{source} is a LoRA adapter: pass --base_repo_id, the repo id (or folder) of the base "
                         "model's release it loads onto; or merge it (`lst finetune ... --merge`) and export best-merged/.")
    missing = [name for name in ADAPTER_FILES if not (source / name).is_file()]
    if missing:
        raise ValueError(f"{source} lacks {missing}: export an adapter saved by lst_speech.training.finetuning.finetune.")
    _check_output(output_dir, source, base_repo_id=base_repo_id)
    tokenizer = AutoTokenizer.from_pretrained(source)
    adapter_config = json.loads((source / "adapter_config.json").read_text())
    base_config = AutoConfig.from_pretrained(adapter_config["base_model_name_or_path"], trust_remote_code=True)
    # The release names base_repo_id as the base: it must hold the weights the adapter was fine-tuned on.
    head = AutoModelForSequenceClassification if adapter_config.get("task_type") == "SEQ_CLS" else AutoModelForCausalLM
    base = head.from_pretrained(base_repo_id, trust_remote_code=True)
    check_adapter_base(json.loads((source / BASE_RECORD).read_text()), base, source, f"--base_repo_id {base_repo_id}")
    output_dir = Path(output_dir)
    with atomic_directory(output_dir, OWNER) as partial:
        _write_adapter_release(partial, source, adapter_config, base_repo_id, base_config, tokenizer, facts, repo_id)
    logger.info("adapter release written to %s (base %s)", output_dir, base_repo_id)
    return output_dir


def _write_adapter_release(partial: Path, source: Path, adapter_config, base_repo_id, base_config, tokenizer, facts,
                           repo_id):
    from safetensors import safe_open

    for name in ADAPTER_FILES:
        shutil.copy2(source / name, partial / name)
    (partial / "adapter_config.json").write_text(json.dumps({**adapter_config, "base_model_name_or_path": base_repo_id},
                                                            indent=2) + "\n")
    save_tokenizer_with_remote_code(tokenizer, partial)
    with safe_open(str(source / "adapter_model.safetensors"), "pt") as weights:
        trained = sum(math.prod(weights.get_slice(key).get_shape()) for key in weights.keys())
    card_facts = {"name": repo_id.split("/")[-1] if repo_id else source.name, "model_type": base_config.model_type,
                  "repo_id": repo_id, "base_model": base_repo_id, "task_type": adapter_config["task_type"],
                  "parameters": {"adapter (LoRA and saved modules)": trained}, **(facts or {})}
    model_card(card_facts).save(partial / "README.md")


def upload_plan(folder: str | os.PathLike, repo_id: str, private: bool = False, revision: str | None = None,
                create_pr: bool = False) -> dict:
    """Everything `push_release` decides before the network: checked, as plain data (what `--dry_run` prints)."""
    from huggingface_hub import ModelCard

    folder = Path(folder)
    if not REPO_ID.match(repo_id or ""):
        raise ValueError(f"The repo id must be 'org/name' (letters, digits, '.', '_', '-'); got {repo_id!r}.")
    required = (*RELEASE_FILES, "adapter_config.json" if (folder / "adapter_config.json").is_file() else "config.json")
    missing = [name for name in required if not (folder / name).is_file()]
    weights = sorted(p.name for p in folder.glob("*.safetensors"))
    if missing or not weights:
        raise ValueError(f"{folder} is not a release folder (missing {missing + ([] if weights else ['*.safetensors'])}):"
                         " write one with `lst export` first.")
    card = ModelCard.load(folder / "README.md")
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MARKER)
    return {"repo_id": repo_id, "private": private, "revision": revision or "main", "create_pr": create_pr,
            "files": [{"path": f, "bytes": (folder / f).stat().st_size} for f in files],
            "card": {"model_name": card.data.model_name, "license": card.data.license,
                     "eval_results": len(card.data.eval_results or [])}}


def push_release(folder: str | os.PathLike, repo_id: str, private: bool = False, revision: str | None = None,
                 create_pr: bool = False, dry_run: bool = False, token: str | None = None) -> dict:
    """Upload a release folder with huggingface_hub (the token from `hf auth login` unless given)."""
    plan = upload_plan(folder, repo_id, private, revision, create_pr)
    if dry_run:
        return plan
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision and revision != "main" and not create_pr:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, revision=revision, create_pr=create_pr,
                               commit_message="Upload LST release", ignore_patterns=[MARKER])
    plan["commit_url"] = str(commit)
    return plan
