"""Bad checkpoints: each damaged one is found whole before any state is loaded, named with what is wrong, and
`latest` falls back to the newest whole checkpoint, logging what it skipped."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from accelerate import Accelerator
from transformers import get_scheduler

from lst_speech.training.checkpoints import (
    STATE_FILE,
    checkpoint_problem,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)

REQUIRED = ("step", "micro_batches")


def training_objects():
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=1, num_training_steps=10)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    return accelerator, model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory with whole checkpoints at steps 2 and 4."""
    directory = tmp_path_factory.mktemp("run")
    accelerator, _ = training_objects()
    for step in (2, 4):
        save_checkpoint(accelerator, directory, step, {"step": step, "micro_batches": step * 3})
    return directory


@pytest.fixture
def damaged_run(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def state_of(directory):
    return json.loads((directory / STATE_FILE).read_text())


DAMAGES = {
    "weights deleted": (lambda c: (c / "model.safetensors").unlink(), r"model.safetensors is missing"),
    "weights truncated": (lambda c: open(c / "model.safetensors", "r+b").truncate(40),
                          r"model.safetensors has 40 bytes where the save wrote \d+"),
    "weights overwritten at the same size": (
        lambda c: (c / "model.safetensors").write_bytes(b"\0" * (c / "model.safetensors").stat().st_size),
        r"model.safetensors is damaged"),
    "optimizer deleted": (lambda c: (c / "optimizer.bin").unlink(), r"optimizer.bin is missing"),
    "scheduler state deleted": (lambda c: (c / "custom_checkpoint_0.pkl").unlink(), r"custom_checkpoint_0.pkl is missing"),
    "random states deleted": (lambda c: (c / "random_states_0.pkl").unlink(), r"random_states_0.pkl is missing"),
    "state file empty": (lambda c: (c / STATE_FILE).write_text(""), r"trainer_state.json is not valid JSON"),
    "state file corrupt": (lambda c: (c / STATE_FILE).write_text('{"step": 4,'), r"is not valid JSON"),
    "state file a list": (lambda c: (c / STATE_FILE).write_text("[4]"), r"holds list, not the trainer state"),
    "state without step": (lambda c: (c / STATE_FILE).write_text(json.dumps(
        {k: v for k, v in state_of(c).items() if k != "step"})), r"lacks \['step'\]"),
    "state without position": (lambda c: (c / STATE_FILE).write_text(json.dumps(
        {k: v for k, v in state_of(c).items() if k != "micro_batches"})), r"lacks \['micro_batches'\]"),
    "state with a bad step": (lambda c: (c / STATE_FILE).write_text(json.dumps({**state_of(c), "step": "four"})),
                              r"has step 'four', not a step count"),
    "state without manifest": (lambda c: (c / STATE_FILE).write_text(json.dumps(
        {k: v for k, v in state_of(c).items() if k != "files"})), r"lacks \['files'\]"),
}


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_a_damaged_checkpoint_is_named_and_latest_falls_back(damaged_run, case, caplog):
    damage, words = DAMAGES[case]
    newest = damaged_run / "checkpoint-4"
    damage(newest)
    assert checkpoint_problem(newest, REQUIRED) is not None
    with pytest.raises(ValueError, match=rf"checkpoint-4 cannot be resumed from: .*{words}"):
        resolve_checkpoint(damaged_run, str(newest), REQUIRED)
    with caplog.at_level(logging.WARNING, logger="lst_speech.training.checkpoints"):
        assert resolve_checkpoint(damaged_run, "latest", REQUIRED) == damaged_run / "checkpoint-2"
    assert "skipping checkpoint" in caplog.text and "checkpoint-4" in caplog.text


def test_nothing_is_loaded_from_a_damaged_checkpoint(damaged_run):
    (damaged_run / "checkpoint-4" / "custom_checkpoint_0.pkl").unlink()
    accelerator, model = training_objects()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="custom_checkpoint_0.pkl is missing"):
        load_checkpoint(accelerator, damaged_run / "checkpoint-4", REQUIRED)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_whole_checkpoint_loads_and_every_damaged_one_means_no_resume(damaged_run):
    accelerator, _ = training_objects()
    assert load_checkpoint(accelerator, damaged_run / "checkpoint-4", REQUIRED) == {"step": 4, "micro_batches": 12}
    for step in (2, 4):
        (damaged_run / f"checkpoint-{step}" / "optimizer.bin").unlink()
    assert resolve_checkpoint(damaged_run, "latest", REQUIRED) is None


@pytest.mark.parametrize("requested, words", [
    ("no-such-checkpoint", r"there is no such directory"),
    (".", r"cannot be resumed from: it has no trainer_state.json"),
])
def test_a_requested_checkpoint_that_is_not_one_is_named(run, requested, words):
    path = run / requested if requested != "." else run
    with pytest.raises(ValueError, match=words):
        resolve_checkpoint(run, str(path), REQUIRED)


def test_a_partial_save_is_never_picked(damaged_run):
    (damaged_run / ".checkpoint-6.partial").mkdir()
    (damaged_run / "checkpoint-8").mkdir()  # a directory with the name but no state: not finished
    assert resolve_checkpoint(damaged_run, "latest", REQUIRED) == damaged_run / "checkpoint-4"
