"""Atomic training checkpoints: `save_state` into a hidden partial directory, renamed when complete.

A checkpoint is `checkpoint-<step>/` (Accelerate's model, optimizer, scheduler and RNG states plus our
`trainer_state.json`). It is written as `.checkpoint-<step>.partial/` and renamed only after every process
has finished writing, so a process killed mid-save leaves a partial directory that `latest_checkpoint`
never picks up (and the next save clears).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.json"


def checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints, oldest first."""
    directory = Path(output_dir)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir()
             if (m := CHECKPOINT.match(p.name)) and (p / STATE_FILE).is_file()]
    return [path for _, path in sorted(found)]


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    found = checkpoints(output_dir)
    return found[-1] if found else None


def resolve_checkpoint(output_dir: str | os.PathLike, requested: str | None) -> Path | None:
    """`requested` as a path, or the newest complete checkpoint for 'latest' (None when there is none yet)."""
    if requested is None:
        return None
    if requested == "latest":
        return latest_checkpoint(output_dir)
    path = Path(requested)
    if not (path / STATE_FILE).is_file():
        raise ValueError(f"{path} is not a complete checkpoint (no {STATE_FILE}); pass a checkpoint-N directory or 'latest'.")
    return path


def save_checkpoint(accelerator, output_dir: str | os.PathLike, step: int, state: dict,
                    total_limit: int | None = None) -> Path:
    output_dir = Path(output_dir)
    final = output_dir / f"checkpoint-{step}"
    partial = output_dir / f".checkpoint-{step}.partial"
    if accelerator.is_main_process:
        for leftover in output_dir.glob(".checkpoint-*.partial"):
            shutil.rmtree(leftover)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with open(partial / STATE_FILE, "w") as handle:
            json.dump(state, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
        if total_limit:
            for old in checkpoints(output_dir)[:-total_limit]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, path: Path) -> dict:
    accelerator.load_state(str(path))
    return json.loads((path / STATE_FILE).read_text())


def save_pretrained_atomically(model, tokenizer, directory: str | os.PathLike, extra_files: dict | None = None,
                               with_code: bool = False) -> None:
    """`save_pretrained` of model (or peft adapter) and tokenizer, and `extra_files` (name -> text), into a
    temporary directory, renamed when complete, so that a kill mid-write never leaves a half-written model
    where a complete one is expected. `with_code` saves the code beside them (modeling_lst.export), so LST
    and the joint tokenizer load with `trust_remote_code=True` without this package."""
    from modeling_lst.export import save_tokenizer_with_remote_code, save_with_remote_code

    directory = Path(directory)
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    if with_code and model.config.model_type == "lst":
        save_with_remote_code(model, partial, tokenizer=tokenizer)
    else:
        model.save_pretrained(partial)
        (save_tokenizer_with_remote_code if with_code else type(tokenizer).save_pretrained)(tokenizer, partial)
    for name, text in (extra_files or {}).items():
        (partial / name).write_text(text)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(partial, directory)


def write_text_atomically(path: Path, text: str) -> None:
    """`text` into `path` through a temporary file renamed into place: a reader never sees half a file."""
    partial = path.with_name(path.name + ".part")
    partial.write_text(text)
    os.replace(partial, path)


def read_log(path: Path) -> list[dict]:
    """The rows of a JSON-lines training log (none before the first step)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines after `step`: a resumed run logs those steps again."""
    kept = [row for row in read_log(path) if row["step"] <= step]
    write_text_atomically(path, "".join(json.dumps(row) + "\n" for row in kept))
