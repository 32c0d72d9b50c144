"""The fine-tuning loop (Accelerate, LoRA through peft or full) and its arguments: SLUE sentiment or NER, ASR or
TTS, on text or speech input. `python -m lst_speech.training.finetuning.finetune` (`lst finetune`) runs it;
the transfer matrix calls `finetune` once per cell."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import peft
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import AutoTokenizer, get_scheduler

import lst_speech.modeling_lst  # noqa: F401  (registers LST with the Auto classes)
from lst_speech.modeling_lst.pairing import BASE_RECORD, base_fingerprint, base_record, check_tokenizer_matches_model
from lst_speech.tokenization.atomic_files import write_text_atomically
from lst_speech.tokenization.output_safety import check_apart, check_replaceable, claim_directory
from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor
from lst_speech.training.arguments import check_local_path
from lst_speech.training.batches import Batches
from lst_speech.training.checkpoints import (
    checkpoint_state,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
    save_pretrained_atomically,
    truncate_log,
)
from lst_speech.training.finetuning.adapters import load_finetuned
from lst_speech.training.finetuning.lora_presets import LORA_PRESETS, lora_config
from lst_speech.training.finetuning.slue_ner import NerTask
from lst_speech.training.finetuning.slue_sentiment import SentimentTask
from lst_speech.training.finetuning.speech_text_tasks import AsrTask, TtsTask

logger = logging.getLogger("lst.finetune")
MODALITIES = ("text", "speech")
TASKS = ("slue-sa", "slue-ner", "asr", "tts")
FIXED_MODALITIES = {"asr": "speech", "tts": "text"}  # what ASR and TTS read
LOG_FILE = "log.jsonl"
OWNER = "lst finetune"
INPUTS = ("model_name_or_path", "tokenizer", "train_data", "validation_data", "unit_extractor", "vocoder",
          "transcriber", "transcriber_language_model")


@dataclass
class FinetuningArguments:
    model_name_or_path: str = field(metadata={"help": "a pretrained LST or Llama baseline (save_pretrained dir)"})
    train_data: str = field(metadata={"help": "training rows: SLUE-schema files (parquet, jsonl or csv); for asr "
                                              "and tts also a save_to_disk folder of paired rows"})
    validation_data: str = field(metadata={"help": "validation rows in the same schema"})
    output_dir: str = field(metadata={"help": "logs, checkpoints, results.json and the best adapter or model"})
    task: str = field(default="slue-sa", metadata={"help": f"one of {TASKS}"})
    tokenizer: str | None = field(default=None, metadata={"help": "default: the model's directory. Tokens it has "
                                                                   "beyond the model's vocabulary are trained too"})
    unit_extractor: str | None = field(default=None, metadata={"help": "a saved unit extractor: speech input is "
                                                                        "then extracted from the `audio` column"})
    train_modality: str | None = field(default=None, metadata={"help": f"one of {MODALITIES} (default: text; "
                                                                        "speech for asr)"})
    eval_modality: str | None = field(default=None, metadata={"help": f"one of {MODALITIES} (default: as "
                                                                       "train_modality)"})
    ner_tag_set: str = field(default="raw", metadata={"help": "NER target tags: 'raw' (18, also scored combined) "
                                                              "or 'combined' (7)"})
    max_new_tokens: int | None = field(default=None, metadata={"help": "NER, ASR, TTS: the longest output "
                                                                        "generated (default 96; 1024 for tts)"})
    vocoder: str | None = field(default=None, metadata={"help": "TTS: a unit vocoder (lst vocoder train) to also "
                                                               "score the output by its transcript's CER"})
    transcriber: str = field(default="pocketsphinx", metadata={"help": "TTS with --vocoder: 'pocketsphinx' or a "
                                                                      "transformers ASR model's path"})
    transcriber_language_model: str | None = field(default=None, metadata={"help": "TTS with --vocoder and "
                                                                                  "pocketsphinx: an ARPA LM"})
    lora_preset: str = field(default="global+local", metadata={"help": "a LoRA preset of lst_speech.training.finetuning.lora_presets, "
                                                                       "or 'full' for full fine-tuning"})
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    merge: bool = field(default=False, metadata={"help": "also save the best adapter merged into the base"})
    gradient_checkpointing: bool = False
    max_steps: int = 300
    per_device_batch_size: int = 16
    learning_rate: float = 3e-4
    warmup_steps: int = 20
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 2048
    eval_steps: int = field(default=50, metadata={"help": "validation scoring (and a checkpoint) every N steps and "
                                                          "at the last; 0: at the last step only"})
    metric_for_best_model: str | None = field(default=None, metadata={
        "help": "the validation score that picks best/ (default: the task's: macro_f1, f1, wer or unit_error_rate)"})
    greater_is_better: bool | None = field(default=None, metadata={
        "help": "whether a larger --metric_for_best_model is better (default: the task's direction for its own "
                "score; else true unless the name ends in loss, wer, cer or error_rate)"})
    save_total_limit: int | None = 2
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "a checkpoint-N directory, or "
                                                                               "'latest' (none yet: start)"})
    seed: int = 0
    mixed_precision: str = "no"
    report_to: str = field(default="tensorboard", metadata={"help": "Accelerate tracker for the step losses and "
                                                                    "validation scores, or 'none'"})

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}.")
        fixed = FIXED_MODALITIES.get(self.task)
        self.train_modality = self.train_modality or fixed or "text"
        self.eval_modality = self.eval_modality or self.train_modality
        self.max_new_tokens = self.max_new_tokens or (1024 if self.task == "tts" else 96)
        for name in ("train_modality", "eval_modality"):
            if getattr(self, name) not in MODALITIES:
                raise ValueError(f"{name} must be one of {MODALITIES}, got {getattr(self, name)!r}.")
            if fixed and getattr(self, name) != fixed:
                raise ValueError(f"{self.task} reads {fixed} (it writes the other modality), so --{name} "
                                 f"{getattr(self, name)} cannot be used; leave it unset.")
        if self.vocoder is not None and self.task != "tts":
            raise ValueError("--vocoder scores TTS output; it means nothing for --task " + self.task + ".")
        if self.max_steps < 1 or self.per_device_batch_size < 1:
            raise ValueError("max_steps and per_device_batch_size must be positive.")
        if self.eval_steps < 0:
            raise ValueError(f"eval_steps must be at least 0 (0: validation at the last step only), got "
                             f"{self.eval_steps}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")
        if self.ner_tag_set not in ("raw", "combined"):
            raise ValueError(f"ner_tag_set must be 'raw' or 'combined', got {self.ner_tag_set!r}.")
        check_local_path(self.model_name_or_path, "--model_name_or_path", "a pretrained model")
        for flag, path, what in (("--train_data", self.train_data, "SLUE-schema rows"),
                                 ("--validation_data", self.validation_data, "SLUE-schema rows"),
                                 ("--tokenizer", self.tokenizer, "a saved tokenizer"),
                                 ("--unit_extractor", self.unit_extractor, "a saved unit extractor"),
                                 ("--vocoder", self.vocoder, "a saved unit vocoder")):
            if path is not None and not any(mark in path for mark in "*?["):  # globs are data_files patterns
                check_local_path(path, flag, what, local_only=flag != "--tokenizer")


def recorded_arguments(args: FinetuningArguments | dict) -> dict:
    """What a checkpoint (or a finished run's results) must have been trained with to be reused: every argument
    but the resume request and the tracker, which change nothing that is trained. Takes the arguments or their
    saved dict (one from before `report_to` existed compares equal)."""
    values = args if isinstance(args, dict) else asdict(args)
    return {k: v for k, v in values.items() if k not in ("resume_from_checkpoint", "report_to")}


def task_for(args: FinetuningArguments, tokenizer=None):
    """The task object; for TTS with a vocoder, its transcriber (vocoder + recogniser) is loaded too, which
    needs the `tokenizer` (whether it deduplicates units)."""
    if args.task == "slue-sa":
        return SentimentTask()
    if args.task == "slue-ner":
        return NerTask(args.ner_tag_set, args.max_new_tokens)
    if args.task == "asr":
        return AsrTask(args.max_new_tokens)
    return TtsTask(args.max_new_tokens, transcriber=_unit_transcriber(args, tokenizer) if args.vocoder else None)


def _unit_transcriber(args: FinetuningArguments, tokenizer):
    from transformers import AutoModel

    import lst_speech.tokenization.vocoder  # noqa: F401  (registers the vocoder with AutoModel)
    from lst_speech.evaluation.transcription.transcribers import UnitTranscriber, load_transcriber

    options = {"language_model": args.transcriber_language_model} if args.transcriber_language_model else {}
    vocoder = AutoModel.from_pretrained(args.vocoder).eval()
    return UnitTranscriber(vocoder, load_transcriber(args.transcriber, **options), tokenizer.deduplicate_units)


def best_model_metric(args: FinetuningArguments, task) -> tuple[str, bool]:
    """The score that picks best/ and whether larger is better: `--metric_for_best_model` or the task's own
    (named as a score, `macro_f1`, or as its log key, `eval_macro_f1`)."""
    metric = (args.metric_for_best_model or task.score_name).removeprefix("eval_")
    if args.greater_is_better is not None:
        return metric, args.greater_is_better
    if metric == task.score_name:
        return metric, task.greater_is_better
    return metric, not metric.endswith(("loss", "wer", "cer", "error_rate"))


def improves(scores: dict, best: dict | None, metric: str, greater_is_better: bool) -> bool:
    """Whether `scores` beat the best so far on `metric` (strictly)."""
    if not isinstance(scores.get(metric), (int, float)):
        numbers = sorted(name for name, value in scores.items() if isinstance(value, (int, float)))
        raise ValueError(f"--metric_for_best_model {metric} is not a validation score of this task; its scores "
                         f"are {', '.join(numbers)}.")
    if best is None:
        return True
    return scores[metric] > best[metric] if greater_is_better else scores[metric] < best[metric]


def build_model(args: FinetuningArguments, task, vocabulary_size: int | None = None):
    """The task's model on the pretrained LM, LoRA-wrapped unless `lora_preset` is 'full', with its type and
    the base's weights fingerprint. Given a `vocabulary_size` above the base's (a tokenizer with added tokens),
    the base is resized and the new token rows are trained (peft's `trainable_token_indices`)."""
    model, model_type = task.load_model(args.model_name_or_path)
    fingerprint = base_fingerprint(model)
    base_vocabulary = model.get_input_embeddings().num_embeddings
    new_tokens = list(range(base_vocabulary, vocabulary_size or base_vocabulary))
    if new_tokens:
        model.resize_token_embeddings(vocabulary_size)
        logger.info("resized the base for %d new tokens (ids %d-%d)", len(new_tokens), new_tokens[0], new_tokens[-1])
    if args.lora_preset == "full":
        return model, model_type, fingerprint
    if args.lora_preset not in LORA_PRESETS[model_type]:
        raise ValueError(f"LoRA preset {args.lora_preset!r} does not exist for {model_type}; choose one of "
                         f"{sorted(LORA_PRESETS[model_type])} or 'full'.")
    config = lora_config(model_type, args.lora_preset, task.lora_task, args.lora_rank, args.lora_alpha,
                         args.lora_dropout, new_token_ids=new_tokens)
    return peft.get_peft_model(model, config), model_type, fingerprint


def _count(batch: dict) -> int:
    """What a step's loss averages over: target tokens (generation) or examples (classification)."""
    labels = batch["labels"]
    return int((labels != -100).sum()) if labels.ndim > 1 else labels.shape[0]


def finetune(args: FinetuningArguments) -> dict:
    accelerator = Accelerator(mixed_precision=args.mixed_precision,
                              log_with=None if args.report_to == "none" else args.report_to,
                              project_dir=args.output_dir)
    set_seed(args.seed)
    # The run folder holds only this command's files: its checkpoints are rotated and its log cut on a resume.
    check_apart(("--output_dir", args.output_dir), *((f"--{name}", getattr(args, name)) for name in INPUTS))
    check_replaceable(args.output_dir, OWNER)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model_name_or_path)
    task = task_for(args, tokenizer)
    extractor = load_unit_extractor(args.unit_extractor) if args.unit_extractor else None

    def examples(path, modality):
        # ASR and TTS need units whatever they read: one side of every pair is speech.
        reads_units = modality == "speech" or args.task in FIXED_MODALITIES
        return task.encode(task.rows(path, extractor if reads_units else None), tokenizer, modality, args.max_length)

    train = datasets.Dataset.from_list(examples(args.train_data, args.train_modality))
    validation = examples(args.validation_data, args.eval_modality)
    output_dir = claim_directory(args.output_dir, OWNER)  # made once the data is read: bad rows leave no folder
    model, model_type, fingerprint = build_model(args, task, len(tokenizer))
    check_tokenizer_matches_model(model.config, tokenizer, args.model_name_or_path,
                                  args.tokenizer or args.model_name_or_path)
    if args.gradient_checkpointing:
        model.activation_checkpointing_enable()  # transformers' v5 name for gradient checkpointing
        if args.lora_preset != "full":
            model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks would get no gradient
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("%s on %s, %s: %d of %d parameters trainable", task.name, model_type, args.lora_preset, trainable,
                total)

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate,
                                  weight_decay=args.weight_decay)
    # Stepped once per optimizer step; Accelerate's wrapper would step it once per process.
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=args.warmup_steps,
                              num_training_steps=args.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)

    recorded = recorded_arguments(args)
    state = {"step": 0, "micro_batches": 0, "best": None, "log": [], "examples": 0, "train_seconds": 0.0,
             "arguments": recorded}
    checkpoint = resolve_checkpoint(output_dir, args.resume_from_checkpoint, tuple(state))
    if checkpoint is not None:
        saved = checkpoint_state(checkpoint, tuple(state))
        changed = sorted(k for k in recorded if saved["arguments"].get(k) != recorded[k])
        if changed:
            raise ValueError(f"{checkpoint} was written by a run with other arguments ({', '.join(changed)}); "
                             "resume with the same ones, or start in a new output_dir.")
        state = load_checkpoint(accelerator, checkpoint, tuple(state))
        logger.info("resumed from %s at step %d", checkpoint, state["step"])
    if accelerator.is_main_process:
        truncate_log(output_dir / LOG_FILE, state["step"])
    if accelerator.log_with:
        accelerator.init_trackers("finetune", config={k: v for k, v in asdict(args).items() if v is not None})
    batches = Batches(train, accelerator, task.collate(tokenizer), args, state["micro_batches"])

    model.train()
    while state["step"] < args.max_steps:
        start = time.perf_counter()
        batch = batches.next()
        # The step's loss is the mean over all its targets on all processes (DDP averages over processes).
        local = _count(batch)
        counts = torch.tensor([local, batch["labels"].shape[0]], device=accelerator.device)
        total_count, total_examples = accelerator.reduce(counts, "sum").tolist()
        with accelerator.autocast():
            loss = model(**batch).loss
        accelerator.backward(loss * local * accelerator.num_processes / max(total_count, 1))
        accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        step_loss = accelerator.reduce(loss.detach() * local, "sum").item() / max(total_count, 1)
        state["train_seconds"] += time.perf_counter() - start
        state["step"] += 1
        state["micro_batches"] = batches.position
        state["examples"] += total_examples
        step = state["step"]
        _log(accelerator, output_dir, {"step": step, "loss": step_loss, "learning_rate": scheduler.get_last_lr()[0]})
        if (args.eval_steps and step % args.eval_steps == 0) or step == args.max_steps:
            scores = task.evaluate(model, tokenizer, validation, accelerator, args.per_device_batch_size)
            state["log"].append({"step": step, "loss": step_loss, **scores})
            # A row of its own, as pretraining logs its evaluations: the numbers, named eval_<score>.
            _log(accelerator, output_dir, {"step": step, **{f"eval_{name}": value for name, value in scores.items()
                                                            if isinstance(value, (int, float))
                                                            and not isinstance(value, bool)}})
            logger.info("step %d: loss %.4f, validation %s (%s input)", step, step_loss, task.summary(scores),
                        args.eval_modality)
            if improves(scores, state["best"], *best_model_metric(args, task)):
                state["best"] = {"step": step, **scores}
                if accelerator.is_main_process:
                    _save_best(accelerator.unwrap_model(model), tokenizer, output_dir / "best", args, fingerprint)
            save_checkpoint(accelerator, output_dir, step, state, args.save_total_limit)

    if args.merge and args.lora_preset != "full" and accelerator.is_main_process:
        tuned, _ = load_finetuned(task, output_dir / "best", args.model_name_or_path)
        save_pretrained_atomically(tuned.merge_and_unload(), tokenizer, output_dir / "best-merged", owner=OWNER)
    results = {
        "task": task.name, "model_type": model_type, "lora_preset": args.lora_preset,
        "train_modality": args.train_modality, "eval_modality": args.eval_modality,
        # Every modality the model consumed while it was fine-tuned and selected: the transfer matrix checks
        # that a zero-shot cell's test modality is not among them.
        "modalities_seen": sorted({args.train_modality, args.eval_modality}),
        "trainable_parameters": trainable, "parameters": total, "num_processes": accelerator.num_processes,
        "train_examples_per_second": state["examples"] / state["train_seconds"],
        "train_seconds": state["train_seconds"], "best": state["best"], "best_summary": task.summary(state["best"]),
        "log": state["log"],
        "arguments": asdict(args),
    }
    if accelerator.is_main_process:
        write_text_atomically(output_dir / "results.json", json.dumps(results, indent=2) + "\n")
    accelerator.end_training()
    return results


def _log(accelerator, output_dir: Path, row: dict) -> None:
    """A row of log.jsonl, and its numbers to the tracker at its step."""
    if accelerator.log_with:
        accelerator.log({k: v for k, v in row.items() if k != "step"}, step=row["step"])
    if accelerator.is_main_process:
        with open(output_dir / LOG_FILE, "a") as handle:
            handle.write(json.dumps(row) + "\n")


def _save_best(model, tokenizer, directory: Path, args: FinetuningArguments, fingerprint: str) -> None:
    """The best step's adapter (or model), with the record of its base that `load_finetuned` checks."""
    extra = {BASE_RECORD: base_record(args.model_name_or_path, fingerprint)} if args.lora_preset != "full" else {}
    save_pretrained_atomically(model, tokenizer, directory, extra, owner=OWNER)
