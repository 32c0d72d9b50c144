"""`lst export` and `lst push`: a trained run as a Hub-ready release folder, and that folder uploaded."""

from __future__ import annotations

import json
from pathlib import Path


def add_parser(subparsers) -> None:
    from lst_speech.model_cards.release import export_release, push_release

    export = subparsers.add_parser("export", help="turn a trained run into a Hub-ready release folder")
    export.add_argument("source", type=Path, help="a pretraining output_dir (with final/) or a saved model")
    export.add_argument("--output_dir", type=Path, required=True)
    export.add_argument("--extractor", type=Path, help="the unit extractor the model's units came from")
    export.add_argument("--repo_id", help="the repo id the card's usage lines name")
    export.add_argument("--facts", type=Path, help="a JSON file of facts to add to the card (data, evaluation)")
    export.add_argument("--max_shard_size", default="2GB")
    export.add_argument("--base_repo_id", help="for a LoRA adapter: the base model's release it loads onto")
    export.set_defaults(run=lambda a: export_release(
        a.source, a.output_dir, a.extractor, json.loads(a.facts.read_text()) if a.facts else None, a.repo_id,
        a.max_shard_size, a.base_repo_id))
    push = subparsers.add_parser("push", help="upload a release folder to the Hub")
    push.add_argument("folder", type=Path)
    push.add_argument("--repo_id", required=True)
    push.add_argument("--private", action="store_true")
    push.add_argument("--revision", help="a branch (created if missing)")
    push.add_argument("--create_pr", action="store_true")
    push.add_argument("--dry_run", action="store_true", help="print what would be uploaded, upload nothing")
    push.set_defaults(run=lambda a: print(json.dumps(push_release(
        a.folder, a.repo_id, a.private, a.revision, a.create_pr, a.dry_run), indent=2)))
