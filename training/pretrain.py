"""Pretrain LST (or the Llama baseline of the same global shape) on packed joint speech-text sequences.

    accelerate launch -m lst_speech.training.pretrain --tokenizer tok/ --train_data packed/ --output_dir run/ \\
        --preset small --max_steps 2000 --patching_mode curriculum --curriculum_aligned_until 600 \\
        --curriculum_static_from 1400
    accelerate launch -m lst_speech.training.pretrain config.yaml          # the same arguments as YAML

One code path for one CPU, several GPUs or several nodes (DDP / FSDP / DeepSpeed through the Accelerate
config). The loss of every optimizer step is the mean over all its target tokens, across gradient
accumulation and processes, so a run with 2 processes of batch B equals one process of batch 2B.
Checkpoints (`save_state`) are atomic and `--resume_from_checkpoint latest` continues exactly: data order
and patching draws are functions of (seed, step), and every random state is restored.

`--streaming` reads `--train_data` (Parquet shards from `lst data --streaming`, or a Hub dataset) as an
`IterableDataset` split over the processes, never loading it whole; its checkpoints hold each process's
stream position (`batches.StreamingBatches`), so a resume continues without replaying the consumed data.

`--eval_steps N` scores the held-out loss per modality and a small multiple-choice set every N steps
(`step_evaluation`), logged beside the training loss; `--metric_for_best_model` keeps the best model in `best/`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import AutoTokenizer, get_scheduler

import lst_speech.modeling_lst  # noqa: F401  (registers LST with the Auto classes)
import lst_speech.tokenization  # noqa: F401  (registers the joint tokenizer)
from lst_speech.model_cards.model_card import hardware
from lst_speech.modeling_lst.pairing import check_tokenizer_matches_model
from lst_speech.tokenization.atomic_files import write_text_atomically
from lst_speech.tokenization.output_safety import check_apart, check_replaceable, claim_directory
from lst_speech.training.arguments import DataArguments, ModelArguments, PretrainingArguments, parse_script_arguments
from lst_speech.training.batches import make_batches, trainer_state
from lst_speech.training.checkpoints import (
    load_checkpoint,
    read_log,
    resolve_checkpoint,
    save_checkpoint,
    save_pretrained_atomically,
    truncate_log,
)
from lst_speech.training.data.checks import (
    check_data_tokenizer,
    check_packed_columns,
    check_packed_patch_size,
    streamed_row_check,
)
from lst_speech.training.data.collator import PackedCollator
from lst_speech.training.data.dataset_files import open_dataset
from lst_speech.training.loss_plot import plot_losses
from lst_speech.training.model_setup import build_model, model_config
from lst_speech.training.step_evaluation import StepEvaluation, check_evaluation
from lst_speech.training.steps import LossWindow, evaluate_loss, optimizer_for, patching_for, token_losses
from lst_speech.training.throughput import measured_peak_flops, training_flops

logger = logging.getLogger("lst.pretrain")
RESUME_STATE = ("step", "micro_batches")  # what a checkpoint's trainer state must hold to resume from
LOG_FILE = "log.jsonl"
OWNER = "lst_speech.training.pretrain"


def run(model_args: ModelArguments, data_args: DataArguments, args: PretrainingArguments) -> Path:
    # The run folder holds only this script's files: its checkpoints are rotated and its log cut on a resume.
    check_apart(("--output_dir", args.output_dir), ("--tokenizer", model_args.tokenizer),
                ("--model_name_or_path", model_args.model_name_or_path), ("--train_data", data_args.train_data),
                ("--eval_data", data_args.eval_data))
    check_replaceable(args.output_dir, OWNER)
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(mixed_precision=args.mixed_precision,
                              log_with=None if args.report_to == "none" else args.report_to,
                              project_dir=str(output_dir))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    set_seed(args.seed)
    # The cheap checks first: the checkpoint to resume from and the data, before a model is built.
    checkpoint = resolve_checkpoint(output_dir, args.resume_from_checkpoint, RESUME_STATE)
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer)
    train_data = open_dataset(data_args.train_data, streaming=data_args.streaming)
    config = model_config(model_args, tokenizer, args)
    lst_config = config if model_args.model_type == "lst" else None
    for data in (data_args.train_data, data_args.eval_data):
        if data:
            check_data_tokenizer(data, tokenizer)
    check_packed_columns(train_data, data_args.train_data, lst_config)
    check_packed_patch_size(train_data, data_args.train_data, lst_config.patch_size if lst_config else None)
    check_evaluation(data_args, args)
    model = build_model(model_args, config, args)
    built_from = model_args.model_name_or_path or f"preset {model_args.preset}"
    check_tokenizer_matches_model(model.config, tokenizer, built_from, model_args.tokenizer)
    flops_config = model.config
    text_range = tokenizer.vocabulary_layout()["text_token_range"]
    optimizer = optimizer_for(model, args)
    # The schedule is stepped once per optimizer step; Accelerate's wrapper would step it once per process.
    scheduler = get_scheduler("cosine_with_min_lr", optimizer, num_warmup_steps=args.warmup_steps,
                              num_training_steps=args.max_steps,
                              scheduler_specific_kwargs={"min_lr_rate": args.min_learning_rate_ratio})
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)

    step, state = 0, {}
    if checkpoint is not None:
        state = load_checkpoint(accelerator, checkpoint, RESUME_STATE)
        step = state["step"]
        logger.info("resumed from %s at step %d", checkpoint, step)
    elif args.resume_from_checkpoint == "latest":
        logger.info("no checkpoint in %s yet: starting from scratch", output_dir)
    if accelerator.is_main_process:
        claim_directory(output_dir, OWNER)
        truncate_log(output_dir / LOG_FILE, step)
    collator = (PackedCollator(tokenizer.pad_token_id, lst_config.aligned_by, lst_config.aligned_silences)
                if lst_config else PackedCollator(tokenizer.pad_token_id))
    evaluation = StepEvaluation(data_args, args, tokenizer, lst_config, state)
    batches = make_batches(train_data, data_args, accelerator, collator, args, state,
                           streamed_row_check(lst_config, data_args.train_data))
    if accelerator.log_with:
        accelerator.init_trackers("pretrain", config={k: v for k, v in vars(args).items() if v is not None})

    device = accelerator.device
    peak = args.peak_tflops * 1e12 if args.peak_tflops else measured_peak_flops(
        device, torch.bfloat16 if args.mixed_precision == "bf16" else torch.float32)
    window = LossWindow(device)
    started = time.perf_counter()
    progress = tqdm(total=args.max_steps, initial=step, disable=not accelerator.is_local_main_process, desc="training")
    last_saved = step
    while step < args.max_steps:
        micro_batches = [batches.next() for _ in range(args.gradient_accumulation_steps)]
        # The step's loss is the mean over all its target tokens on all processes; DDP averages gradients
        # over processes, hence the factor num_processes.
        local_targets = sum(int(b["attention_mask"][:, 1:].sum()) for b in micro_batches)
        total_targets = accelerator.reduce(torch.tensor(local_targets, device=device), "sum").item()
        for micro, batch in enumerate(micro_batches):
            starts = (patching_for(batch, lst_config, args.seed, step, accelerator.process_index, micro)
                      if lst_config else None)
            sync = contextlib.nullcontext() if micro == len(micro_batches) - 1 else accelerator.no_sync(model)
            with sync, accelerator.autocast():
                losses, valid = token_losses(model, batch, starts)
                loss = losses[valid].sum() * accelerator.num_processes / max(total_targets, 1)
                accelerator.backward(loss)
            window.add(losses, valid, batch["input_ids"][:, 1:], batch["modality_mask"][:, 1:], text_range)
            window.tokens += float(batch["attention_mask"].sum())
            real = batch["attention_mask"].bool()
            window.positions += float((starts & real).sum() if starts is not None else real.sum())
            window.flops += training_flops(model_args.model_type, flops_config, batch["attention_mask"].cpu(), starts)
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        progress.update(1)

        out_of_time = args.max_train_minutes is not None and time.perf_counter() - started > 60 * args.max_train_minutes
        if step % args.logging_steps == 0 or step == args.max_steps or out_of_time:
            _log(accelerator, output_dir, window, step, scheduler.get_last_lr()[0], float(grad_norm), peak, progress)
        if evaluation.due(step):
            evaluation_started = time.perf_counter()
            _evaluate(accelerator, output_dir, evaluation, model, tokenizer, step)
            window.started += time.perf_counter() - evaluation_started  # throughput counts training time only
        if (args.save_steps and step % args.save_steps == 0) or step == args.max_steps or out_of_time:
            save_checkpoint(accelerator, output_dir, step,
                            {**trainer_state(step, batches, accelerator), **evaluation.state()}, args.save_total_limit)
            last_saved = step
        if out_of_time:
            logger.info("stopping at step %d: the %.1f-minute budget is spent", step, args.max_train_minutes)
            break
    progress.close()
    if last_saved != step:
        save_checkpoint(accelerator, output_dir, step, {**trainer_state(step, batches, accelerator),
                                                        **evaluation.state()}, args.save_total_limit)
    # Each process records what it trained on, so multi-process runs can be checked rank by rank.
    ranks = output_dir / "ranks"
    ranks.mkdir(parents=True, exist_ok=True)
    write_text_atomically(ranks / f"rank-{accelerator.process_index}.json", json.dumps(
        {"process_index": accelerator.process_index, "num_processes": accelerator.num_processes,
         "micro_batches": batches.position, "step": step}))
    final = output_dir / "final"
    if accelerator.is_main_process:
        # The final checkpoint carries its code, so it loads with trust_remote_code where lst is not installed.
        save_pretrained_atomically(accelerator.unwrap_model(model), tokenizer, final, with_code=True, owner=OWNER)
        write_text_atomically(output_dir / "run.json", json.dumps({
            "model_type": model_args.model_type, "preset": model_args.preset,
            **({name: getattr(lst_config, name) for name in ("patching_mode", "aligned_by", "aligned_silences")}
               if lst_config else {}),
            "hardware": hardware(), "num_processes": accelerator.num_processes,
            "mixed_precision": args.mixed_precision}, indent=2) + "\n")
        plot_losses(read_log(output_dir / LOG_FILE), output_dir / "loss.png", title=f"{model_args.model_type} pretraining")
    if data_args.eval_data:
        results = evaluate_loss(model, open_dataset(data_args.eval_data), tokenizer, accelerator, args,
                                lst_config)
        if accelerator.is_main_process:
            write_text_atomically(output_dir / "eval_results.json", json.dumps(results, indent=2))
            logger.info("held-out loss: %s", results)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return final


def _log(accelerator, output_dir: Path, window: LossWindow, step: int, lr: float, grad_norm: float, peak: float,
         progress) -> None:
    elapsed = time.perf_counter() - window.started
    totals = accelerator.reduce(torch.tensor([window.tokens, window.positions, window.flops], dtype=torch.float64,
                                             device=accelerator.device), "sum").tolist()
    metrics = {"step": step, **window.means(accelerator), "learning_rate": lr, "grad_norm": grad_norm,
               "tokens_per_second": totals[0] / elapsed, "global_positions_per_second": totals[1] / elapsed,
               "mfu": totals[2] / elapsed / (peak * accelerator.num_processes), "window_seconds": elapsed,
               "tokens": totals[0], "global_positions": totals[1], "flops": totals[2]}  # the window's, all processes
    window.reset()
    if accelerator.log_with:
        accelerator.log({k: v for k, v in metrics.items() if k != "step"}, step=step)
    if accelerator.is_main_process:
        with open(output_dir / LOG_FILE, "a") as handle:
            handle.write(json.dumps(metrics) + "\n")
        progress.set_postfix(loss=f"{metrics['loss']:.3f}", tok_s=f"{metrics['tokens_per_second']:.0f}")
        logger.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))


def _evaluate(accelerator, output_dir: Path, evaluation: StepEvaluation, model, tokenizer, step: int) -> None:
    """Log the evaluation as a row of its own in log.jsonl (its keys start with eval_) and to the tracker, and
    copy the model to best/ when it improves on --metric_for_best_model."""
    metrics = evaluation.metrics(model, accelerator)
    if accelerator.log_with:
        accelerator.log(metrics, step=step)
    improved = evaluation.improves(step, metrics)
    if accelerator.is_main_process:
        with open(output_dir / LOG_FILE, "a") as handle:
            handle.write(json.dumps({"step": step, **metrics}) + "\n")
        logger.info("step=%d %s", step, " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        if improved:
            best = {"step": step, "metric_for_best_model": evaluation.args.metric_for_best_model,
                    "best_metric": evaluation.best_metric, **metrics}
            save_pretrained_atomically(accelerator.unwrap_model(model), tokenizer, output_dir / "best",
                                       {"best_metric.json": json.dumps(best, indent=2) + "\n"}, with_code=True,
                                       owner=OWNER)
            logger.info("best %s so far at step %d: %.4g (saved in best/)", evaluation.args.metric_for_best_model,
                        step, evaluation.best_metric)
    accelerator.wait_for_everyone()


def parse_arguments(argv: list[str] | None = None):
    return parse_script_arguments((ModelArguments, DataArguments, PretrainingArguments), argv)


def main(argv: list[str] | None = None) -> None:
    run(*parse_arguments(argv))


if __name__ == "__main__":
    main()
