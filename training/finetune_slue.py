"""Fine-tune LST (or the Llama baseline) on SLUE sentiment, with LoRA through peft or in full.

    accelerate launch -m training.finetune_slue --model_name_or_path run/final --train_data sa/train.parquet \\
        --validation_data sa/validation.parquet --output_dir sa-run/ --train_modality text --eval_modality speech
    accelerate launch -m training.finetune_slue sa.yaml                 # the same arguments as YAML
    lst finetune --model_name_or_path run/final ...                     # one process

Rows follow the `asapp/slue` voxceleb schema (`id`, `normalized_text`, `sentiment`); speech input reads a
`units` column of unit ids. The model reads one utterance, in the training modality, and a classification
head on the mean of its final token states (`LSTForSequenceClassification`; the baseline's
`LlamaForSequenceClassification` reads its last token) predicts Negative / Neutral / Positive. The validation
split, in the evaluation modality, is scored every `--eval_steps` with the `slue_sa` metric (macro F1 with a
bootstrap interval, and macro recall); the best step's adapter (or model) is saved to `output_dir/best` with
`save_pretrained`, and `--merge` also writes it merged into a plain checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import evaluate
import numpy as np
import peft
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, HfArgumentParser, LlamaForSequenceClassification, get_scheduler

from evaluation.slue import SENTIMENT_LABELS, load_slue, sentiment_examples
from evaluation.uncertainty import bootstrap_interval
from modeling_lst import LSTForSequenceClassification
from training.checkpoints import save_pretrained_atomically
from training.lora_presets import LORA_PRESETS, lora_config

logger = logging.getLogger("lst.finetune")
MODALITIES = ("text", "speech")
SLUE_SA_METRIC = Path(__file__).resolve().parent.parent / "evaluation" / "metrics" / "slue_sa"


@dataclass
class FinetuningArguments:
    model_name_or_path: str = field(metadata={"help": "a pretrained LST or Llama baseline (save_pretrained dir)"})
    train_data: str = field(metadata={"help": "SLUE voxceleb-schema training rows (parquet, jsonl or csv)"})
    validation_data: str = field(metadata={"help": "validation rows in the same schema"})
    output_dir: str = field(metadata={"help": "logs, results.json and the best adapter or model"})
    tokenizer: str | None = field(default=None, metadata={"help": "default: the model's directory"})
    train_modality: str = field(default="text", metadata={"help": f"one of {MODALITIES}"})
    eval_modality: str = field(default="text", metadata={"help": f"one of {MODALITIES}"})
    lora_preset: str = field(default="global+local", metadata={"help": "a LoRA preset of training.lora_presets, "
                                                                       "or 'full' for full fine-tuning"})
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    merge: bool = field(default=False, metadata={"help": "also save the best adapter merged into the base"})
    max_steps: int = 300
    per_device_batch_size: int = 16
    learning_rate: float = 3e-4
    warmup_steps: int = 20
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 2048
    eval_steps: int = 50
    seed: int = 0
    mixed_precision: str = "no"

    def __post_init__(self):
        for name in ("train_modality", "eval_modality"):
            if getattr(self, name) not in MODALITIES:
                raise ValueError(f"{name} must be one of {MODALITIES}, got {getattr(self, name)!r}.")
        if self.max_steps < 1 or self.eval_steps < 1 or self.per_device_batch_size < 1:
            raise ValueError("max_steps, eval_steps and per_device_batch_size must be positive.")


def encode(rows: list[dict], tokenizer, modality: str, max_length: int) -> list[dict]:
    """Token ids of each row's utterance in `modality`, with its label index. Over-long rows are refused,
    never cut."""
    encoded = []
    for row in rows:
        if modality == "speech":
            if row.get("units") is None:
                raise ValueError(f"Row {row['id']!r} has no units, but speech input was asked for: add a `units` "
                                 "column (unit ids from a unit extractor, see `lst units extract`).")
            segment = np.asarray(row["units"], dtype=np.int64)
        else:
            segment = row["text"]
        ids = tokenizer(segments=[segment])["input_ids"]
        if len(ids) > max_length:
            raise ValueError(f"Row {row['id']!r} is {len(ids)} tokens long in {modality}, over --max_length "
                             f"{max_length}: raise it (the model's positions allow it) or shorten the input.")
        encoded.append({"input_ids": ids, "labels": SENTIMENT_LABELS.index(row["label"])})
    return encoded


def sentiment_rows(path: str) -> list[dict]:
    """`{id, text, label, units}` rows; rows with another sentiment (SLUE's `<mixed>`) are counted and logged."""
    dataset = load_slue("voxceleb", data_files=path)
    rows, other = sentiment_examples(dataset)
    if other:
        logger.info("%s: %d rows with other sentiments left out (%s), as SLUE scores only the three classes",
                    path, sum(other.values()), dict(other))
    units = dict(zip(dataset["id"], dataset["units"])) if "units" in dataset.column_names else {}
    return [{**row, "units": units.get(row["id"])} for row in rows]


def load_classifier(args: FinetuningArguments):
    """The pretrained LM with a new 3-way classification head, and its type ("lst" or "llama")."""
    with open(os.path.join(args.model_name_or_path, "config.json"), encoding="utf-8") as handle:
        model_type = "lst" if json.load(handle).get("model_type") == "lst" else "llama"
    head_class = LSTForSequenceClassification if model_type == "lst" else LlamaForSequenceClassification
    model = head_class.from_pretrained(args.model_name_or_path, num_labels=len(SENTIMENT_LABELS),
                                       id2label=dict(enumerate(SENTIMENT_LABELS)),
                                       label2id={name: i for i, name in enumerate(SENTIMENT_LABELS)})
    return model, model_type


def build_model(args: FinetuningArguments):
    """`load_classifier`, LoRA-wrapped unless `lora_preset` is 'full'."""
    model, model_type = load_classifier(args)
    if args.lora_preset == "full":
        return model, model_type
    if args.lora_preset not in LORA_PRESETS[model_type]:
        raise ValueError(f"LoRA preset {args.lora_preset!r} does not exist for {model_type}; choose one of "
                         f"{sorted(LORA_PRESETS[model_type])} or 'full'.")
    config = lora_config(model_type, args.lora_preset, "classification", args.lora_rank, args.lora_alpha,
                         args.lora_dropout)
    return peft.get_peft_model(model, config), model_type


def collate(tokenizer):
    def collate_batch(examples):
        batch = tokenizer.pad({"input_ids": [e["input_ids"] for e in examples]}, return_tensors="pt")
        return {**batch, "labels": torch.tensor([e["labels"] for e in examples])}

    return collate_batch


def evaluate_sentiment(model, loader, accelerator) -> dict:
    """slue_sa on the loader's rows: macro F1 (with a 95% bootstrap interval), macro recall, per-label F1."""
    model.eval()
    predicted, gold = [], []
    with torch.no_grad():
        for batch in loader:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            predictions, labels = accelerator.gather_for_metrics((logits.argmax(-1), batch["labels"]))
            predicted += predictions.tolist()
            gold += labels.tolist()
    model.train()
    names = [SENTIMENT_LABELS[i] for i in predicted], [SENTIMENT_LABELS[i] for i in gold]
    metric = evaluate.load(str(SLUE_SA_METRIC))
    result = metric.compute(predictions=names[0], references=names[1])

    def macro_f1(predictions, references):
        return metric.compute(predictions=list(predictions), references=list(references))["macro_f1"]

    result["macro_f1_ci95"] = list(bootstrap_interval(macro_f1, *names, resamples=200))
    return result


def finetune(args: FinetuningArguments) -> dict:
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    set_seed(args.seed)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model_name_or_path)
    train = encode(sentiment_rows(args.train_data), tokenizer, args.train_modality, args.max_length)
    validation = encode(sentiment_rows(args.validation_data), tokenizer, args.eval_modality, args.max_length)
    model, model_type = build_model(args)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("%s, %s: %d of %d parameters trainable", model_type, args.lora_preset, trainable, total)

    generator = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(train, batch_size=args.per_device_batch_size, shuffle=True, generator=generator,
                              collate_fn=collate(tokenizer))
    validation_loader = DataLoader(validation, batch_size=args.per_device_batch_size, collate_fn=collate(tokenizer))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate,
                                  weight_decay=args.weight_decay)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=args.warmup_steps,
                              num_training_steps=args.max_steps)
    model, optimizer, train_loader, validation_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, validation_loader, scheduler)

    log, best, step, examples, train_seconds = [], None, 0, 0, 0.0
    model.train()
    while step < args.max_steps:
        for batch in train_loader:
            start = time.perf_counter()
            loss = model(**batch).loss
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            train_seconds += time.perf_counter() - start
            step += 1
            examples += batch["labels"].shape[0] * accelerator.num_processes
            if step % args.eval_steps == 0 or step == args.max_steps:
                scores = evaluate_sentiment(model, validation_loader, accelerator)
                log.append({"step": step, "loss": loss.item(), **scores})
                logger.info("step %d: loss %.4f, validation macro F1 %.3f [%.3f, %.3f] (%s)", step, loss.item(),
                            scores["macro_f1"], *scores["macro_f1_ci95"], args.eval_modality)
                if best is None or scores["macro_f1"] > best["macro_f1"]:
                    best = {"step": step, **scores}
                    if accelerator.is_main_process:
                        save_pretrained_atomically(accelerator.unwrap_model(model), tokenizer, output_dir / "best")
            if step == args.max_steps:
                break

    if args.merge and args.lora_preset != "full" and accelerator.is_main_process:
        tuned = peft.PeftModel.from_pretrained(load_classifier(args)[0], output_dir / "best")
        save_pretrained_atomically(tuned.merge_and_unload(), tokenizer, output_dir / "best-merged")
    results = {
        "model_type": model_type, "lora_preset": args.lora_preset, "train_modality": args.train_modality,
        "eval_modality": args.eval_modality, "trainable_parameters": trainable, "parameters": total,
        "train_examples_per_second": examples / train_seconds, "train_seconds": train_seconds,
        "best": best, "log": log, "arguments": asdict(args),
    }
    if accelerator.is_main_process:
        (output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    accelerator.end_training()
    return results


def parse_arguments(argv: list[str] | None = None) -> FinetuningArguments:
    parser = HfArgumentParser(FinetuningArguments)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(os.path.abspath(argv[0]))[0]
    return parser.parse_args_into_dataclasses(argv)[0]


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    results = finetune(parse_arguments(argv))
    best = results["best"]
    logger.info("best step %d: macro F1 %.3f [%.3f, %.3f] on %s input (trained on %s); %.1f examples/s",
                best["step"], best["macro_f1"], *best["macro_f1_ci95"], results["eval_modality"],
                results["train_modality"], results["train_examples_per_second"])


if __name__ == "__main__":
    main()
