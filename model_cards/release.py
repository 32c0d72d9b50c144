"""Releases: a trained run as a Hub-ready folder (`lst export`), and that folder uploaded (`lst push`).

    lst export outputs/main_job/lst --output_dir release/ --extractor outputs/main_job/extractor --repo_id org/lst-small
    lst push release/ --repo_id org/lst-small [--private] [--revision BRANCH] [--create_pr] [--dry_run]

A release holds safetensors weights (sharded above `--max_shard_size`), `config.json` and the tokenizer with
their `auto_map` and the code they need (so `AutoModel*` and `AutoTokenizer` load it with
`trust_remote_code=True` where this package is not installed; the Llama baseline's model is a transformers
architecture and needs no code, its tokenizer does), `generation_config.json`, the unit extractor in
`extractor/`, and a model card (model_cards.model_card). The folder is built beside its destination and
renamed into place when complete. Uploading is `huggingface_hub`'s `create_repo` + `upload_folder`;
everything decided before that (what is uploaded, where, the card's metadata) is checked first and is what
`--dry_run` prints.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

import modeling_lst  # noqa: F401  (registers LST with the Auto classes)
import tokenization  # noqa: F401  (registers the joint tokenizer)
from modeling_lst.accounting import parameter_counts
from modeling_lst.export import save_tokenizer_with_remote_code, save_with_remote_code
from tokenization.unit_extraction import CENTROIDS_FILE, CONFIG_FILE
from model_cards.model_card import model_card, run_facts

logger = logging.getLogger("lst.release")
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
RELEASE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "README.md")


def _model_directory(path: Path) -> tuple[Path, Path | None]:
    """(the saved model, the run directory that trained it or None) for a run's output_dir or a model dir."""
    if (path / "final" / "config.json").is_file():
        return path / "final", path
    if (path / "config.json").is_file():
        run = path.parent if (path.parent / "log.jsonl").is_file() else None
        return path, run
    if (path / "adapter_config.json").is_file():
        raise ValueError(f"{path} is a LoRA adapter: merge it first (`lst finetune ... --merge` writes best-merged/) "
                         "and export that, or upload the adapter folder with peft's push_to_hub.")
    raise ValueError(f"{path} is not a trained run: expected a pretraining output_dir (with final/) or a model "
                     "directory written by save_pretrained (with config.json).")


def _load(model_dir: Path):
    architecture = (AutoConfig.from_pretrained(model_dir).architectures or ["ForCausalLM"])[0]
    auto = AutoModelForSequenceClassification if architecture.endswith("ForSequenceClassification") else \
        AutoModelForCausalLM
    return auto.from_pretrained(model_dir)


def export_release(source: str | os.PathLike, output_dir: str | os.PathLike, extractor: str | os.PathLike | None = None,
                   facts: dict | None = None, repo_id: str | None = None, max_shard_size: str = "2GB") -> Path:
    """Write the release of `source` (a pretraining run's output_dir, or a saved model) to `output_dir` (which may
    be the source's own model directory). `facts` add to what the run recorded (data recipe, evaluation
    results) in the card. Returns `output_dir`."""
    model_dir, run_dir = _model_directory(Path(source))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = _load(model_dir)
    vocabulary = model.get_input_embeddings().num_embeddings
    if len(tokenizer) != vocabulary:
        raise ValueError(f"The tokenizer in {model_dir} has {len(tokenizer)} tokens but the model's vocabulary has "
                         f"{vocabulary}: export the tokenizer the model was trained with (or resize the model).")
    if extractor is not None and not (Path(extractor) / CONFIG_FILE).is_file():
        raise ValueError(f"{extractor} is not a saved unit extractor (no {CONFIG_FILE}).")
    output_dir = Path(output_dir)
    partial = output_dir.with_name(f".{output_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    if model.config.model_type == "lst":
        save_with_remote_code(model, partial, tokenizer=tokenizer, max_shard_size=max_shard_size)
    else:
        model.save_pretrained(partial, max_shard_size=max_shard_size)
        save_tokenizer_with_remote_code(tokenizer, partial)
    if extractor is not None:
        (partial / "extractor").mkdir()
        for name in (CONFIG_FILE, CENTROIDS_FILE):
            shutil.copy2(Path(extractor) / name, partial / "extractor" / name)
    card_facts = run_facts(run_dir) if run_dir is not None else {}
    for key, value in (facts or {}).items():  # nested sections merge, so callers add to what the run recorded
        card_facts[key] = {**card_facts.get(key, {}), **value} if isinstance(value, dict) else value
    card_facts.update(name=card_facts.get("name", repo_id.split("/")[-1] if repo_id else model_dir.parent.name),
                      model_type=model.config.model_type, repo_id=repo_id,
                      preset=getattr(model.config, "preset", None) or card_facts.get("preset"),
                      parameters=parameter_counts(model) if model.config.model_type == "lst" else
                      {"total": sum(p.numel() for p in model.parameters())},
                      tokenizer=tokenizer.vocabulary_layout() if hasattr(tokenizer, "vocabulary_layout") else None)
    model_card(card_facts).save(partial / "README.md")
    if output_dir.exists():
        shutil.rmtree(output_dir)
    os.replace(partial, output_dir)
    logger.info("release written to %s", output_dir)
    return output_dir


def upload_plan(folder: str | os.PathLike, repo_id: str, private: bool = False, revision: str | None = None,
                create_pr: bool = False) -> dict:
    """Everything `push_release` decides before the network: checked, as plain data (what `--dry_run` prints)."""
    from huggingface_hub import ModelCard

    folder = Path(folder)
    if not REPO_ID.match(repo_id or ""):
        raise ValueError(f"The repo id must be 'org/name' (letters, digits, '.', '_', '-'); got {repo_id!r}.")
    missing = [name for name in RELEASE_FILES if not (folder / name).is_file()]
    weights = sorted(p.name for p in folder.glob("*.safetensors"))
    if missing or not weights:
        raise ValueError(f"{folder} is not a release folder (missing {missing + ([] if weights else ['*.safetensors'])}):"
                         " write one with `lst export` first.")
    card = ModelCard.load(folder / "README.md")
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
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
                               commit_message="Upload LST release")
    plan["commit_url"] = str(commit)
    return plan


def add_parser(subparsers) -> None:
    export = subparsers.add_parser("export", help="turn a trained run into a Hub-ready release folder")
    export.add_argument("source", type=Path, help="a pretraining output_dir (with final/) or a saved model")
    export.add_argument("--output_dir", type=Path, required=True)
    export.add_argument("--extractor", type=Path, help="the unit extractor the model's units came from")
    export.add_argument("--repo_id", help="the repo id the card's usage lines name")
    export.add_argument("--facts", type=Path, help="a JSON file of facts to add to the card (data, evaluation)")
    export.add_argument("--max_shard_size", default="2GB")
    export.set_defaults(run=lambda a: export_release(
        a.source, a.output_dir, a.extractor, json.loads(a.facts.read_text()) if a.facts else None, a.repo_id,
        a.max_shard_size))
    push = subparsers.add_parser("push", help="upload a release folder to the Hub")
    push.add_argument("folder", type=Path)
    push.add_argument("--repo_id", required=True)
    push.add_argument("--private", action="store_true")
    push.add_argument("--revision", help="a branch (created if missing)")
    push.add_argument("--create_pr", action="store_true")
    push.add_argument("--dry_run", action="store_true", help="print what would be uploaded, upload nothing")
    push.set_defaults(run=lambda a: print(json.dumps(push_release(
        a.folder, a.repo_id, a.private, a.revision, a.create_pr, a.dry_run), indent=2)))
