"""Atomic, validated training checkpoints: `save_state` into a hidden partial directory, renamed when complete.

A checkpoint is `checkpoint-<step>/` (Accelerate's model, optimizer, scheduler and RNG states plus our
`trainer_state.json`). It is written as `.checkpoint-<step>.partial/` and renamed only after every process
has finished writing, so a process killed mid-save leaves a partial directory that `latest_checkpoint`
never picks up (and the next save clears). The state file lists every file of the save with its size, so a
checkpoint damaged later (a deleted or truncated file, a corrupt state) is found before anything is loaded, and
'latest' falls back to the newest whole one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

from safetensors import safe_open

from lst_speech.tokenization.atomic_files import atomic_directory, write_text_atomically

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.json"
MANIFEST = "files"  # in the state: each file the save wrote, with its size
REQUIRED_STATE = ("step",)

logger = logging.getLogger(__name__)


def checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint directories that finished writing (they hold trainer_state.json), oldest first."""
    directory = Path(output_dir)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir()
             if (m := CHECKPOINT.match(p.name)) and (p / STATE_FILE).is_file()]
    return [path for _, path in sorted(found)]


def checkpoint_problem(path: Path, required_keys=REQUIRED_STATE) -> str | None:
    """What is wrong with a checkpoint, or None when it is whole: its state file parses and holds
    `required_keys`, and every file the save wrote (the state's manifest) is there, at its size, with
    readable safetensors headers. Nothing is loaded, so a damaged checkpoint is found before any state is."""
    state_path = path / STATE_FILE
    if not state_path.is_file():
        return f"it has no {STATE_FILE} (the save did not finish)"
    try:
        state = json.loads(state_path.read_text())
    except ValueError as error:
        return f"its {STATE_FILE} is not valid JSON ({error})"
    if not isinstance(state, dict):
        return f"its {STATE_FILE} holds {type(state).__name__}, not the trainer state"
    missing = [key for key in (*required_keys, MANIFEST) if key not in state]
    if missing:
        return f"its {STATE_FILE} lacks {missing}"
    if not isinstance(state["step"], int) or state["step"] < 0:
        return f"its {STATE_FILE} has step {state['step']!r}, not a step count"
    for name, size in sorted(state[MANIFEST].items()):
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != size:
            return f"{name} has {file.stat().st_size} bytes where the save wrote {size} (truncated or replaced)"
        if name.endswith(".safetensors"):
            try:
                with safe_open(str(file), framework="pt") as handle:
                    handle.keys()
            except Exception as error:  # safetensors raises its own error type for every kind of damage
                return f"{name} is damaged ({error})"
    return None


def latest_checkpoint(output_dir: str | os.PathLike, required_keys=REQUIRED_STATE) -> Path | None:
    """The newest whole checkpoint; damaged newer ones are skipped, each logged with what is wrong."""
    for path in reversed(checkpoints(output_dir)):
        problem = checkpoint_problem(path, required_keys)
        if problem is None:
            return path
        logger.warning("skipping checkpoint %s: %s", path, problem)
    return None


def resolve_checkpoint(output_dir: str | os.PathLike, requested: str | None,
                       required_keys=REQUIRED_STATE) -> Path | None:
    """`requested` as a path (refused unless whole), or the newest whole checkpoint for 'latest' (None when there
    is none yet)."""
    if requested is None:
        return None
    if requested == "latest":
        return latest_checkpoint(output_dir, required_keys)
    path = Path(requested)
    if not path.is_dir():
        raise ValueError(f"--resume_from_checkpoint {path}: there is no such directory; pass a checkpoint-N "
                         "directory of this run or 'latest'.")
    problem = checkpoint_problem(path, required_keys)
    if problem is not None:
        raise ValueError(f"--resume_from_checkpoint {path} cannot be resumed from: {problem}. Pass another "
                         "checkpoint-N, or 'latest' to take the newest whole one.")
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
        manifest = {p.name: p.stat().st_size for p in sorted(partial.iterdir()) if p.is_file()}
        with open(partial / STATE_FILE, "w") as handle:
            json.dump({**state, MANIFEST: manifest}, handle, indent=2)
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


def checkpoint_state(path: Path, required_keys=REQUIRED_STATE) -> dict:
    """A whole checkpoint's trainer state (without its manifest); nothing of the model or optimizer is loaded."""
    problem = checkpoint_problem(path, required_keys)
    if problem is not None:
        raise ValueError(f"Checkpoint {path} cannot be resumed from: {problem}.")
    state = json.loads((path / STATE_FILE).read_text())
    state.pop(MANIFEST)
    return state


def load_checkpoint(accelerator, path: Path, required_keys=REQUIRED_STATE) -> dict:
    """The trainer state, after checking the whole checkpoint, and Accelerate's states loaded."""
    state = checkpoint_state(path, required_keys)
    accelerator.load_state(str(path))
    return state


def save_pretrained_atomically(model, tokenizer, directory: str | os.PathLike, extra_files: dict | None = None,
                               with_code: bool = False, *, owner: str) -> None:
    """`save_pretrained` of model (or peft adapter) and tokenizer, and `extra_files` (name -> text), into a
    temporary directory, renamed when complete, so that a kill mid-write never leaves a half-written model
    where a complete one is expected; it replaces only `owner`'s earlier output (atomic_directory). `with_code`
    saves the code beside them (lst_speech.modeling_lst.export), so LST and the joint tokenizer load with
    `trust_remote_code=True` without this package."""
    from lst_speech.modeling_lst.export import save_tokenizer_with_remote_code, save_with_remote_code

    with atomic_directory(directory, owner) as partial:
        if with_code and model.config.model_type == "lst":
            save_with_remote_code(model, partial, tokenizer=tokenizer)
        else:
            model.save_pretrained(partial)
            (save_tokenizer_with_remote_code if with_code else type(tokenizer).save_pretrained)(tokenizer, partial)
        for name, text in (extra_files or {}).items():
            (partial / name).write_text(text)


def read_log(path: Path) -> list[dict]:
    """The rows of a JSON-lines training log (none before the first step)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines after `step`: a resumed run logs those steps again."""
    kept = [row for row in read_log(path) if row["step"] <= step]
    write_text_atomically(path, "".join(json.dumps(row) + "\n" for row in kept))
