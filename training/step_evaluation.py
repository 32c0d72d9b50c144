"""Evaluation every `--eval_steps` optimizer steps, so a run shows when an ability appears rather than only where
it ended: the held-out loss per target modality (`--eval_data`), a small multiple-choice set's accuracy in each
of `--eval_multiple_choice_directions` (`--eval_multiple_choice`; its spoken versions are synthesised once, at
the start; `--eval_multiple_choice_context_gain` adds the context-gain ranking), and CRA in its four directions (`--eval_context_retrieval`). `--metric_for_best_model` keeps the
weights of the best evaluation in `best/`; the best step and value travel in each checkpoint's trainer state, so
a resumed run goes on comparing with them."""

from __future__ import annotations

import math

import datasets
import torch

from lst_speech.evaluation.context_retrieval import context_retrieval_accuracy
from lst_speech.evaluation.multiple_choice import multiple_choice_accuracy
from lst_speech.evaluation.multiple_choice_data import load_text_items, spoken_items, text_items
from lst_speech.training.arguments import DataArguments, PretrainingArguments, direction_tag
from lst_speech.training.data.dataset_files import open_dataset
from lst_speech.training.steps import evaluate_loss


def check_evaluation(data_args: DataArguments, args: PretrainingArguments) -> None:
    """`--eval_steps` needs something to score, and `--metric_for_best_model` a metric it logs."""
    names = data_args.eval_metrics()
    if args.eval_steps and not names:
        raise ValueError("--eval_steps needs --eval_data (held-out packed sequences) or --eval_multiple_choice.")
    if args.metric_for_best_model and args.metric_for_best_model not in names:
        raise ValueError(f"--metric_for_best_model {args.metric_for_best_model} is not logged by this run's "
                         f"evaluation; it logs {', '.join(names)}.")


class StepEvaluation:
    """The evaluation sets, loaded once, and the best value so far (from the resumed checkpoint's `state`)."""

    def __init__(self, data_args: DataArguments, args: PretrainingArguments, tokenizer, lst_config, state: dict):
        check_evaluation(data_args, args)
        self.args, self.tokenizer, self.lst_config = args, tokenizer, lst_config
        self.eval_data = open_dataset(data_args.eval_data) if data_args.eval_data else None
        self.items = {}  # direction tag -> items
        self.context_gain = data_args.eval_multiple_choice_context_gain
        if data_args.eval_multiple_choice:
            text = load_text_items(data_args.eval_multiple_choice, data_args.eval_multiple_choice_format)
            spoken = set(data_args.eval_multiple_choice_directions) - {"T->T"}
            synthesizer, extractor, cache = None, None, {}
            if spoken:
                from lst_speech.tokenization.speech.espeak import EspeakSynthesizer
                from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor

                synthesizer, extractor = EspeakSynthesizer(), load_unit_extractor(data_args.eval_unit_extractor)
            for direction in data_args.eval_multiple_choice_directions:
                self.items[direction_tag(direction)] = (
                    text_items(text) if direction == "T->T"
                    else spoken_items(text, direction, synthesizer, extractor, cache))
        self.cra_rows = []
        if data_args.eval_context_retrieval:
            corpus = datasets.load_from_disk(data_args.eval_context_retrieval)
            # a prompt and a continuation need a word each
            self.cra_rows = [row for row in corpus if len(row["words"]) >= 2][: data_args.eval_context_retrieval_num]
            if len(self.cra_rows) < 2:
                raise ValueError(f"--eval_context_retrieval {data_args.eval_context_retrieval} has "
                                 f"{len(self.cra_rows)} utterances of two words or more; CRA needs at least two.")
        self.best_step, self.best_metric = state.get("best_step"), state.get("best_metric")

    def due(self, step: int) -> bool:
        return bool(self.args.eval_steps) and step % self.args.eval_steps == 0

    def metrics(self, model, accelerator) -> dict[str, float]:
        """Every metric, the same on all processes: the held-out loss is reduced over them, and each process
        scores the whole multiple-choice set and CRA corpus (they are meant to be small)."""
        results = {}
        if self.eval_data is not None:
            losses = evaluate_loss(model, self.eval_data, self.tokenizer, accelerator, self.args, self.lst_config)
            results.update({f"eval_{name}": value for name, value in losses.items()})
        model.eval()
        for tag, items in self.items.items():
            with torch.no_grad(), accelerator.autocast():
                scores = multiple_choice_accuracy(accelerator.unwrap_model(model), self.tokenizer, items,
                                                  self.args.per_device_batch_size, context_gain=self.context_gain)
            results.update({f"eval_mc_{tag}_{name}": value for name, value in scores.items()
                            if name.startswith("accuracy_") and not name.endswith("_ci95")})
        if self.cra_rows:
            with torch.no_grad(), accelerator.autocast():
                cra = context_retrieval_accuracy(accelerator.unwrap_model(model), self.tokenizer, self.cra_rows,
                                                 batch_size=self.args.per_device_batch_size)
            results.update({f"eval_cra_{direction}": scores["cra"] for direction, scores in cra.items()})
        model.train()
        return results

    def improves(self, step: int, metrics: dict[str, float]) -> bool:
        """Whether `metrics` beat the best so far on `--metric_for_best_model` (then they become the best);
        a NaN (no token of that kind) never does."""
        if not self.args.metric_for_best_model:
            return False
        value = metrics[self.args.metric_for_best_model]
        if math.isnan(value):
            return False
        if self.best_metric is not None and not (value > self.best_metric if self.args.greater_is_better
                                                 else value < self.best_metric):
            return False
        self.best_step, self.best_metric = step, value
        return True

    def state(self) -> dict:
        """What a checkpoint records, so a resume compares with the same best."""
        if not self.args.metric_for_best_model:
            return {}
        return {"best_step": self.best_step, "best_metric": self.best_metric,
                "metric_for_best_model": self.args.metric_for_best_model}
