"""Zero-shot cross-modal transfer: fine-tune on {text, speech}, test on {text, speech}, for LST and the baseline.

    lst transfer --task slue-sa --data_dir slue-stand-in --unit_extractor outputs/main_job/extractor \\
        --models lst=outputs/main_job/lst/final llama=outputs/main_job/llama/final --output_dir transfer-sa
    lst transfer transfer.yaml                        # the same arguments as YAML

Each model is fine-tuned once per training modality (lst_speech.training.finetuning.finetune, LoRA by default), with its best
step chosen on the validation split in the training modality, and its best adapter is scored on the test
split in both modalities. The cells where the test modality differs from the training one are SUTLM's
zero-shot transfer, and only count if the model never saw the test modality while it was fine-tuned or
selected: a configuration that would break this is refused before anything trains, and each run's own
record of the modalities it consumed is checked before its zero-shot cells are scored. Writes
`transfer.json` and `transfer.md` (scores with 95% bootstrap intervals, trainable parameters, time). A run
already finished with the same arguments is reused, so an interrupted matrix, or a new model, adds to it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from accelerate import Accelerator

from lst_speech.tokenization.atomic_files import write_text_atomically
from lst_speech.tokenization.output_safety import check_apart, claim_directory, remove_output
from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor
from lst_speech.training.arguments import parse_script_arguments
from lst_speech.training.checkpoints import STATE_FILE, latest_checkpoint
from lst_speech.training.finetuning.adapters import load_finetuned
from lst_speech.training.finetuning.loop import (
    MODALITIES,
    OWNER as FINETUNE_OWNER,
    TASKS,
    FinetuningArguments,
    finetune,
    recorded_arguments,
    task_for,
)
from lst_speech.training.finetuning.slue_data import model_type_of

logger = logging.getLogger("lst.transfer")
SLUE_CONFIG = {"slue-sa": "voxceleb", "slue-ner": "voxpopuli"}
DEFAULT_PRESETS = {"lst": "global+local", "llama": "all"}


@dataclass
class TransferArguments:
    output_dir: str = field(metadata={"help": "one folder per fine-tuning run, and transfer.json / transfer.md"})
    models: list[str] = field(metadata={"help": "name=path of each pretrained model, e.g. lst=run/lst/final"})
    task: str = field(default="slue-sa", metadata={"help": f"one of {TASKS}"})
    data_dir: str | None = field(default=None, metadata={"help": "a folder in the asapp/slue layout "
                                                                  "(voxceleb|voxpopuli/{train,validation,test}.parquet)"})
    train_data: str | None = field(default=None, metadata={"help": "overrides data_dir's train split"})
    validation_data: str | None = None
    test_data: str | None = None
    unit_extractor: str | None = field(default=None, metadata={"help": "a saved unit extractor for speech input "
                                                                        "from audio (else a `units` column)"})
    selection_modality: str = field(default="train", metadata={
        "help": "the validation modality for best-step selection: 'train' (the training modality, which keeps the "
                "other modality unseen), 'text' or 'speech'"})
    lora_preset: str | None = field(default=None, metadata={"help": "default: global+local for LST, all for Llama"})
    max_steps: int = 300
    eval_steps: int = 50
    per_device_batch_size: int = 16
    learning_rate: float = 3e-4
    warmup_steps: int = 20
    ner_tag_set: str = "raw"
    max_new_tokens: int = 96
    seed: int = 0

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}.")
        if self.selection_modality not in ("train", *MODALITIES):
            raise ValueError(f"selection_modality must be 'train', 'text' or 'speech', got {self.selection_modality!r}.")
        for entry in self.models:
            name, _, path = entry.partition("=")
            if not name or not path:
                raise ValueError(f"Each of --models is name=path (e.g. lst=run/lst/final); got {entry!r}.")
        names = [entry.partition("=")[0] for entry in self.models]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:  # one run folder per name: a second model would reuse the first one's runs
            raise ValueError(f"--models names {repeated} more than once; give each model its own name.")
        for split in ("train", "validation", "test"):
            if getattr(self, f"{split}_data") is None:
                if self.data_dir is None:
                    raise ValueError(f"No {split} data: pass --data_dir (asapp/slue layout) or --{split}_data.")
                setattr(self, f"{split}_data", str(Path(self.data_dir) / SLUE_CONFIG[self.task] / f"{split}.parquet"))
        for train_modality in MODALITIES:
            seen = {train_modality, self.selected_on(train_modality)}
            for test_modality in MODALITIES:
                if test_modality != train_modality and test_modality in seen:
                    raise ValueError(
                        f"selection_modality={self.selection_modality!r} selects the model trained on "
                        f"{train_modality} on {test_modality} validation data, so its {test_modality} test cell would "
                        "not be zero-shot: use selection_modality='train'.")

    def selected_on(self, train_modality: str) -> str:
        return train_modality if self.selection_modality == "train" else self.selection_modality

    def named_models(self) -> dict[str, str]:
        return dict(entry.split("=", 1) for entry in self.models)


def run_arguments(args: TransferArguments, name: str, path: str, train_modality: str) -> FinetuningArguments:
    preset = args.lora_preset or DEFAULT_PRESETS[model_type_of(path)]
    return FinetuningArguments(
        model_name_or_path=path, train_data=args.train_data, validation_data=args.validation_data,
        output_dir=str(Path(args.output_dir) / name / f"train-{train_modality}"), task=args.task,
        unit_extractor=args.unit_extractor, train_modality=train_modality,
        eval_modality=args.selected_on(train_modality), ner_tag_set=args.ner_tag_set,
        max_new_tokens=args.max_new_tokens, lora_preset=preset, max_steps=args.max_steps, eval_steps=args.eval_steps,
        per_device_batch_size=args.per_device_batch_size, learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps, seed=args.seed, resume_from_checkpoint="latest")


def fine_tuned(run: FinetuningArguments) -> dict:
    """The run's results: read back when it already finished with these arguments, else trained (resuming an
    interrupted run with the same arguments; a run with other arguments is cleared and trained again)."""
    run_dir = Path(run.output_dir)
    results_file = run_dir / "results.json"
    if results_file.is_file():
        results = json.loads(results_file.read_text())
        if recorded_arguments(results["arguments"]) == recorded_arguments(run):  # as a checkpoint is compared
            logger.info("reusing %s", run.output_dir)
            return results
        logger.info("%s was fine-tuned with other arguments: training it again", run.output_dir)
        remove_output(run_dir, FINETUNE_OWNER)
    latest = latest_checkpoint(run_dir)
    if latest is not None:
        state = json.loads((latest / STATE_FILE).read_text())
        if state.get("arguments") != recorded_arguments(run):
            logger.info("%s holds checkpoints of other arguments: training it again", run.output_dir)
            remove_output(run_dir, FINETUNE_OWNER)
    return finetune(run)


def check_unseen(results: dict, test_modality: str, run_dir: str) -> None:
    """A zero-shot cell's model must not have consumed its test modality while fine-tuned or selected."""
    if test_modality in results["modalities_seen"]:
        raise AssertionError(f"{run_dir} saw {test_modality} input during fine-tuning ({results['modalities_seen']}): "
                             f"its {test_modality} test score is not zero-shot.")


def transfer_matrix(args: TransferArguments) -> dict:
    check_apart(("--output_dir", args.output_dir), *(("--models", path) for path in args.named_models().values()),
                *((f"--{name}", getattr(args, name)) for name in ("data_dir", "train_data", "validation_data",
                                                                   "test_data", "unit_extractor")))
    # Every run's arguments (model, data, steps) are checked before the folder is made.
    runs = {(name, modality): run_arguments(args, name, path, modality)
            for name, path in args.named_models().items() for modality in MODALITIES}
    claim_directory(args.output_dir, "lst transfer")  # it reuses, and clears, only its own runs in there
    task = task_for(args)  # the task's settings (task, ner_tag_set, max_new_tokens) are the run's too
    extractor = load_unit_extractor(args.unit_extractor) if args.unit_extractor else None
    accelerator = Accelerator()
    test_rows = {m: task.rows(args.test_data, extractor if m == "speech" else None) for m in MODALITIES}
    cells = []
    for name, path in args.named_models().items():
        for train_modality in MODALITIES:
            run = runs[name, train_modality]
            results = fine_tuned(run)
            model, tokenizer = load_finetuned(task, Path(run.output_dir) / "best", path)
            for test_modality in MODALITIES:
                zero_shot = test_modality != train_modality
                if zero_shot:
                    check_unseen(results, test_modality, run.output_dir)
                started = time.perf_counter()
                examples = task.encode(test_rows[test_modality], tokenizer, test_modality, run.max_length)
                scores = task.evaluate(model, tokenizer, examples, accelerator, args.per_device_batch_size)
                cells.append({
                    "model": name, "model_type": results["model_type"], "lora_preset": results["lora_preset"],
                    "train_modality": train_modality, "test_modality": test_modality, "zero_shot": zero_shot,
                    "selected_on": run.eval_modality, "best_step": results["best"]["step"],
                    "trainable_parameters": results["trainable_parameters"], "parameters": results["parameters"],
                    "train_seconds": results["train_seconds"], "test_seconds": time.perf_counter() - started,
                    "train_examples_per_second": results["train_examples_per_second"],
                    "test_rows": len(examples), "scores": scores,
                })
                logger.info("%s train %s -> test %s%s: %s", name, train_modality, test_modality,
                            " (zero-shot)" if zero_shot else "", task.summary(scores))
    report = {"task": args.task, "arguments": asdict(args), "cells": cells}
    output_dir = Path(args.output_dir)
    write_text_atomically(output_dir / "transfer.json", json.dumps(report, indent=2) + "\n")
    write_text_atomically(output_dir / "transfer.md", markdown_table(report))
    for name in args.named_models():  # for `lst export --facts`: the cells as model-index results of the card
        write_text_atomically(output_dir / f"card_facts-{name}.json", json.dumps(card_facts(report, name), indent=2) + "\n")
    return report


def card_facts(report: dict, model: str) -> dict:
    """`model`'s cells as the `lst_speech.evaluation.slue.data` facts of a model card (lst_speech.model_cards.model_card)."""
    sentiment = report["task"] == "slue-sa"
    dataset_dir = report["arguments"]["data_dir"] or report["arguments"]["test_data"]
    return {"evaluation": {"slue": [
        {"task": report["task"], "train_modality": c["train_modality"], "test_modality": c["test_modality"],
         "metric": ("macro F1" if sentiment else "F1") + (" (zero-shot)" if c["zero_shot"] else ""),
         "value": c["scores"]["macro_f1" if sentiment else "f1"], "dataset_id": Path(dataset_dir).name,
         "dataset_name": f"SLUE {SLUE_CONFIG[report['task']]} ({dataset_dir})"}
        for c in report["cells"] if c["model"] == model]}}


def markdown_table(report: dict) -> str:
    """One row per (model, training modality), one column per test modality; zero-shot cells marked."""
    sentiment = report["task"] == "slue-sa"
    header = ("macro F1 [95% CI] / recall" if sentiment else "F1 [95% CI] / label-F1")
    lines = [f"{report['task']}: {header} on the test split; * = zero-shot (the model never saw that modality)", "",
             "| model | trained on | test: text | test: speech | trainable params | fine-tuning | examples/s |",
             "|---|---|---|---|---|---|---|"]
    rows: dict[tuple, dict] = {}
    for cell in report["cells"]:
        rows.setdefault((cell["model"], cell["train_modality"]), {})[cell["test_modality"]] = cell
    for (model, train_modality), by_test in rows.items():
        entries = []
        for test_modality in MODALITIES:
            cell = by_test[test_modality]
            s = cell["scores"]
            value = ("%.3f [%.3f, %.3f] / %.3f" % (s["macro_f1"], *s["macro_f1_ci95"], s["macro_recall"]) if sentiment
                     else "%.3f [%.3f, %.3f] / %.3f" % (s["f1"], *s["f1_ci95"], s["label_f1"]))
            entries.append(value + (" *" if cell["zero_shot"] else ""))
        first = by_test[MODALITIES[0]]
        lines.append(f"| {model} ({first['lora_preset']}) | {train_modality} | {entries[0]} | {entries[1]} | "
                     f"{first['trainable_parameters']:,} | {first['train_seconds']:.0f} s | "
                     f"{first['train_examples_per_second']:.1f} |")
    return "\n".join(lines) + "\n"


def parse_arguments(argv: list[str] | None = None) -> TransferArguments:
    return parse_script_arguments((TransferArguments,), argv)[0]


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    report = transfer_matrix(parse_arguments(argv))
    print(markdown_table(report))


if __name__ == "__main__":
    main()
