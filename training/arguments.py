"""Arguments of `lst_speech.training.pretrain`, as dataclasses for `HfArgumentParser` (command line or YAML), and the
parsing every script shares: `script.py config.yaml [--overrides]`."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field

import yaml
from transformers import HfArgumentParser

from lst_speech.evaluation.context_retrieval import DIRECTIONS as CRA_DIRECTIONS
from lst_speech.evaluation.likelihood import NORMALIZATIONS
from lst_speech.evaluation.multiple_choice_data import DIRECTIONS as MC_DIRECTIONS
from lst_speech.evaluation.multiple_choice_data import FORMATS as MC_FORMATS
from lst_speech.modeling_lst.configuration_lst import (
    ALIGNED_BY,
    PATCHING_FIELDS,
    PATCHING_MODES,
    PRESETS,
    SILENCES,
    LSTConfig,
)
from lst_speech.tokenization.tokenizer_files import reads_as_path
from lst_speech.training.data.dataset_files import describe_problem

MODEL_TYPES = ("lst", "llama")
MIXED_PRECISIONS = ("no", "bf16", "fp16")


def check_local_path(value: str, flag: str, what: str, local_only: bool = False) -> None:
    """A value meant as a local path (any value when `local_only`) must exist; an 'org/name' is otherwise left to
    the Hub."""
    if os.path.exists(value):
        return
    if local_only or reads_as_path(value):
        alternative = "" if local_only else " (or an 'org/name' repo id)"
        raise ValueError(f"{flag} {value} does not exist: pass the path of {what}{alternative}.")


@dataclass
class ModelArguments:
    tokenizer: str = field(metadata={"help": "directory of a saved SpeechUnitTextTokenizer"})
    model_type: str = field(default="lst", metadata={"help": f"one of {MODEL_TYPES}: LST, or the Llama baseline "
                                                              "with LST's global shape over tokens"})
    preset: str = field(default="small", metadata={"help": f"shape preset, one of {sorted(PRESETS)}"})
    config_overrides: str | None = field(default=None, metadata={"help": "JSON of LSTConfig fields to override"})
    model_name_or_path: str | None = field(default=None, metadata={"help": "start from saved weights instead"})

    def __post_init__(self):
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {self.model_type!r}.")
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}.")
        check_local_path(self.tokenizer, "--tokenizer", "a saved SpeechUnitTextTokenizer")
        if self.model_name_or_path:
            check_local_path(self.model_name_or_path, "--model_name_or_path", "a saved model")
        self.overrides()

    def overrides(self) -> dict:
        """`config_overrides` as a dict of LSTConfig fields."""
        if not self.config_overrides:
            return {}
        try:
            overrides = json.loads(self.config_overrides)
        except ValueError as error:
            raise ValueError(f"--config_overrides is not valid JSON ({error}): write it as "
                             """'{"global_num_layers": 4}'.""") from error
        if not isinstance(overrides, dict):
            raise ValueError(f"--config_overrides must be a JSON object of LSTConfig fields, got {overrides!r}.")
        return overrides


@dataclass
class DataArguments:
    train_data: str = field(metadata={"help": "packed training sequences: a save_to_disk folder or a folder of "
                                              "Parquet shards from `lst data`, or with --streaming a Hub dataset"})
    eval_data: str | None = field(default=None, metadata={"help": "held-out packed sequences, scored at the end "
                                                                   "and every --eval_steps"})
    eval_multiple_choice: str | None = field(default=None, metadata={
        "help": "a small multiple-choice set scored every --eval_steps, in --eval_multiple_choice_format"})
    eval_multiple_choice_format: str = field(default="topic-storycloze", metadata={"help": f"one of {MC_FORMATS}"})
    eval_multiple_choice_directions: list[str] = field(default_factory=lambda: ["T->T"], metadata={
        "help": f"any of {MC_DIRECTIONS}; spoken ones are synthesised with espeak and need --eval_unit_extractor"})
    eval_multiple_choice_context_gain: bool = field(default=False, metadata={
        "help": "also rank its endings by context gain (conditional minus unconditional log-likelihood; logged as "
                "_accuracy_context_gain), which scores each ending a second time, alone"})
    eval_unit_extractor: str | None = field(default=None, metadata={"help": "a saved unit extractor (the "
                                                                            "tokenizer's units) for spoken directions"})
    eval_context_retrieval: str | None = field(default=None, metadata={
        "help": "a spoken corpus (save_to_disk: text, words, units, word_spans) whose CRA in u2u, u2t, t2u and t2t "
                "is scored every --eval_steps"})
    eval_context_retrieval_num: int = field(default=50, metadata={"help": "its first N utterances of two words or "
                                                                          "more (the N x N matrix)"})
    streaming: bool = field(default=False, metadata={"help": "stream --train_data (an IterableDataset split over "
                                                             "processes by file or row) instead of memory-mapping it"})

    def __post_init__(self):
        for flag, path, streamed in (("--train_data", self.train_data, self.streaming),
                                     ("--eval_data", self.eval_data, False)):
            problem = None if path is None else describe_problem(path, streamed)
            if problem:
                raise ValueError(f"{flag} {path} {problem}: build packed sequences with `lst data` (a save_to_disk "
                                 "folder, or Parquet shards with --streaming).")
        if self.eval_multiple_choice_format not in MC_FORMATS:
            raise ValueError(f"--eval_multiple_choice_format must be one of {MC_FORMATS}, got "
                             f"{self.eval_multiple_choice_format!r}.")
        if self.eval_multiple_choice is not None:
            check_local_path(self.eval_multiple_choice, "--eval_multiple_choice", "a multiple-choice file",
                             local_only=True)
        unknown = [d for d in self.eval_multiple_choice_directions if d not in MC_DIRECTIONS]
        if unknown or not self.eval_multiple_choice_directions:
            raise ValueError(f"--eval_multiple_choice_directions takes some of {MC_DIRECTIONS}, got "
                             f"{self.eval_multiple_choice_directions}.")
        if self.eval_context_retrieval is not None:
            check_local_path(self.eval_context_retrieval, "--eval_context_retrieval", "a spoken corpus saved with "
                             "save_to_disk", local_only=True)
        if self.eval_context_retrieval_num < 2:
            raise ValueError(f"eval_context_retrieval_num must be at least 2 (one right continuation among N), got "
                             f"{self.eval_context_retrieval_num}.")
        if self.eval_unit_extractor is not None:
            check_local_path(self.eval_unit_extractor, "--eval_unit_extractor", "a saved unit extractor",
                             local_only=True)
        elif self.eval_multiple_choice and set(self.eval_multiple_choice_directions) - {"T->T"}:
            raise ValueError("Spoken --eval_multiple_choice_directions need --eval_unit_extractor (a saved unit "
                             "extractor) to turn the synthesised speech into units.")

    def eval_metrics(self) -> tuple[str, ...]:
        """The names `--eval_steps` logs (what `--metric_for_best_model` may name)."""
        names = ("eval_loss", "eval_loss_text", "eval_loss_speech") if self.eval_data else ()
        if self.eval_multiple_choice:
            normalizations = NORMALIZATIONS + ("context_gain",) * self.eval_multiple_choice_context_gain
            names += tuple(f"eval_mc_{direction_tag(direction)}_accuracy_{normalization}"
                           for direction in self.eval_multiple_choice_directions for normalization in normalizations)
        if self.eval_context_retrieval:
            names += tuple(f"eval_cra_{direction}" for direction in CRA_DIRECTIONS)
        return names


def direction_tag(direction: str) -> str:
    """'S->T' as it appears in metric names: s2t."""
    return direction.replace("->", "2").lower()


@dataclass
class PretrainingArguments:
    output_dir: str = field(metadata={"help": "checkpoints, logs, plots and the final model"})
    max_steps: int = field(default=1000, metadata={"help": "optimizer steps"})
    max_train_minutes: float | None = field(default=None, metadata={"help": "stop (and save) after this wall time"})
    per_device_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 4e-4
    min_learning_rate_ratio: float = 0.01
    warmup_steps: int = 100
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    max_grad_norm: float = 1.0
    mixed_precision: str = field(default="no", metadata={"help": "no / bf16 / fp16, passed to Accelerate"})
    gradient_checkpointing: bool = False
    # Patching lives in the model's config (LSTConfig); these override it once, when the model is built from
    # its preset or loaded from --model_name_or_path (unset: the config's own value).
    patching_mode: str | None = field(default=None, metadata={"help": f"one of {PATCHING_MODES} (LST only; a "
                                                                      "preset's default: static)"})
    curriculum_aligned_until: int | None = field(default=None, metadata={"help": "t1: aligned patching until "
                                                                                 "this step"})
    curriculum_static_from: int | None = field(default=None, metadata={"help": "t2: static patching from this step"})
    mixed_aligned_probability: float | None = field(default=None, metadata={"help": "aligned share under mixed"})
    aligned_by: str | None = field(default=None, metadata={"help": f"one of {ALIGNED_BY}: what aligned patches "
                                                                    "follow (default: piece for bpe, else word)"})
    aligned_silences: str | None = field(default=None, metadata={"help": f"one of {SILENCES}: silences between "
                                                                         "words as patches, or merged into them"})
    save_steps: int = field(default=500, metadata={"help": "save_state every N steps (0: only at the end)"})
    save_total_limit: int | None = field(default=2, metadata={"help": "keep at most this many checkpoints"})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "a checkpoint directory, or 'latest'"})
    logging_steps: int = 10
    eval_steps: int = field(default=0, metadata={"help": "score --eval_data and --eval_multiple_choice every N "
                                                         "optimizer steps (0: only --eval_data, at the end)"})
    metric_for_best_model: str | None = field(default=None, metadata={
        "help": "keep output_dir/best: the weights of the eval step with the best value of this metric, e.g. "
                "eval_loss or eval_mc_s2s_accuracy_per_token"})
    greater_is_better: bool | None = field(default=None, metadata={
        "help": "whether a larger --metric_for_best_model is better (default: true unless it names a loss)"})
    seed: int = 0
    shuffle_buffer_size: int = field(default=1000, metadata={"help": "streaming: rows shuffled together, window "
                                                                      "by window (0 keeps the stream's order)"})
    peak_tflops: float | None = field(default=None, metadata={"help": "the device's peak for MFU (default: "
                                                                       "measured matmul peak on CPU)"})
    report_to: str = field(default="tensorboard", metadata={"help": "Accelerate tracker, or 'none'"})

    def patching_overrides(self) -> dict:
        """The patching settings this run sets, for `LSTConfig.with_patching`."""
        return {name: getattr(self, name) for name in PATCHING_FIELDS if getattr(self, name) is not None}

    def __post_init__(self):
        if self.patching_overrides():
            LSTConfig().with_patching(**self.patching_overrides())  # the config's own checks, at parse time
        if self.max_steps < 1 or self.per_device_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("max_steps, per_device_batch_size and gradient_accumulation_steps must be positive.")
        if not self.learning_rate > 0 or self.warmup_steps < 0 or self.save_steps < 0 or self.logging_steps < 1:
            raise ValueError(f"learning_rate must be positive, warmup_steps and save_steps at least 0 and "
                             f"logging_steps at least 1; got {self.learning_rate}, {self.warmup_steps}, {self.save_steps} and "
                             f"{self.logging_steps}.")
        if self.eval_steps < 0:
            raise ValueError(f"eval_steps must be at least 0 (0: no evaluation during training), got "
                             f"{self.eval_steps}.")
        if self.metric_for_best_model:
            if not self.eval_steps:
                raise ValueError("--metric_for_best_model needs --eval_steps N: the best model is chosen at the "
                                 "evaluation steps.")
            if not self.metric_for_best_model.startswith("eval_"):  # as transformers' Trainer accepts "loss"
                self.metric_for_best_model = f"eval_{self.metric_for_best_model}"
            if self.greater_is_better is None:
                self.greater_is_better = "loss" not in self.metric_for_best_model
        if self.shuffle_buffer_size < 0:
            raise ValueError(f"shuffle_buffer_size must be at least 0 (0 keeps the stream's order), got "
                             f"{self.shuffle_buffer_size}.")
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISIONS}, got {self.mixed_precision!r}.")


def parse_script_arguments(dataclass_types, argv: list[str] | None = None) -> tuple:
    """The dataclasses from the command line, or from a YAML file given first, whose values later command-line
    flags override (`lst transfer run.yaml --max_steps 100`). HfArgumentParser reads a YAML file only whole, so
    the file's entries become flags ahead of the user's, and argparse lets the last one win."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0].endswith((".yaml", ".yml")):
        values = read_arguments_file(argv[0], dataclass_types)
        flags = []
        for key, value in values.items():
            if value is None:
                continue
            flags += [f"--{key}", *map(str, value)] if isinstance(value, list) else [f"--{key}", str(value)]
        argv = flags + argv[1:]
    return HfArgumentParser(dataclass_types).parse_args_into_dataclasses(argv)


def read_arguments_file(path: str, dataclass_types) -> dict:
    """A YAML file of argument names and values; what is not such a mapping, or names no argument, is refused with
    the file's name (argparse would report a flag without saying it came from the file)."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise ValueError(f"{path} must be a mapping of argument names to values, got a {type(values).__name__}.")
    known = {f.name for cls in dataclass_types for f in dataclasses.fields(cls)}
    unknown = sorted(str(key) for key in values if key not in known)
    if unknown:
        raise ValueError(f"{path} names unknown arguments {unknown}; the arguments are: {', '.join(sorted(known))}.")
    return values
