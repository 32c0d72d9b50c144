"""Held-out loss per target modality with a 95% bootstrap interval over the packed held-out sequences, and the
paired difference of two models on the same sequences.

The losses are those of `pretrain.py --eval_data` (`eval_results.json`: `loss_text`, `loss_speech`): next-token
cross-entropy in nats, LST under static patching as at inference, text targets in the tokenizer's text range and
speech targets by the modality mask. Each sequence's summed loss and token count per kind are kept; an interval
resamples sequences (1,000 percentile-bootstrap resamples, seed 0) and takes the ratio of the resampled sums, so
tokens weigh as in the pooled mean. The difference (first model minus second) resamples the same sequences for
both, so what they find equally hard cancels.

    python benchmarks/held_out_loss_interval.py --data RUN_DIR/data/held_out --models lst=RUN_DIR/lst/final \
        llama=RUN_DIR/llama/final [--batch_size 8] [--output held_out_loss.json]
"""

from __future__ import annotations

import argparse
import json

import datasets
import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM

import lst_speech.tokenization  # noqa: F401  (registers the joint tokenizer and the LST model)
from lst_speech.evaluation.uncertainty import bootstrap_interval
from lst_speech.modeling_lst.patching import patch_starts
from lst_speech.tokenization import SpeechUnitTextTokenizer
from lst_speech.training.data.collator import PackedCollator
from lst_speech.training.steps import token_losses

KINDS = ("text", "speech")


def sequence_sums(model_dir: str, data, batch_size: int) -> dict[str, np.ndarray]:
    """`{kind: (sequences, 2) array of [summed loss, target count]}` for one model over the packed rows."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = SpeechUnitTextTokenizer.from_pretrained(model_dir)
    low, high = tokenizer.vocabulary_layout()["text_token_range"]
    lst_config = model.config if model.config.model_type == "lst" else None
    sums = {kind: [] for kind in KINDS}
    loader = DataLoader(data, batch_size=batch_size, collate_fn=PackedCollator(tokenizer.pad_token_id))
    with torch.no_grad():
        for batch in loader:
            starts = None if lst_config is None else patch_starts(
                "static", batch["modality_mask"], lst_config.patch_size, lst_config.max_patch_length)
            losses, valid = token_losses(model, batch, starts)
            targets = batch["input_ids"][:, 1:]
            masks = {"text": valid & (targets >= low) & (targets < high), "speech": valid & batch["modality_mask"][:, 1:]}
            for kind, mask in masks.items():
                sums[kind].append(torch.stack([(losses * mask).sum(1), mask.sum(1)], 1).double().numpy())
    return {kind: np.concatenate(parts) for kind, parts in sums.items()}


def pooled(loss, count) -> float:
    return float(loss.sum() / count.sum())


def pooled_difference(loss_a, count_a, loss_b, count_b) -> float:
    return pooled(loss_a, count_a) - pooled(loss_b, count_b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="packed held-out rows (`lst data` or the main job's data/held_out)")
    parser.add_argument("--models", nargs="+", required=True, help="NAME=MODEL_DIR, one or two")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--output", help="also write the numbers here as JSON")
    arguments = parser.parse_args()
    models = dict(spec.split("=", 1) for spec in arguments.models)
    if not 1 <= len(models) <= 2 or any(not path for path in models.values()):
        raise SystemExit(f"--models takes one or two NAME=MODEL_DIR, got {arguments.models}.")
    torch.set_num_threads(1)
    data = datasets.load_from_disk(arguments.data)
    sums = {name: sequence_sums(path, data, arguments.batch_size) for name, path in models.items()}
    report = {"data": arguments.data, "sequences": len(data), "models": models}
    for name, by_kind in sums.items():
        for kind, array in by_kind.items():
            report[f"{name} loss_{kind}"] = {
                "mean": pooled(array[:, 0], array[:, 1]), "tokens": int(array[:, 1].sum()),
                "ci95": bootstrap_interval(pooled, array[:, 0], array[:, 1])}
    if len(models) == 2:
        first, second = (sums[name] for name in models)
        for kind in KINDS:
            columns = (first[kind][:, 0], first[kind][:, 1], second[kind][:, 0], second[kind][:, 1])
            report[f"{' - '.join(models)} loss_{kind}"] = {"difference": pooled_difference(*columns),
                                                            "ci95": bootstrap_interval(pooled_difference, *columns)}
    for key, value in report.items():
        print(f"{key}: {value}")
    if arguments.output:
        with open(arguments.output, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
