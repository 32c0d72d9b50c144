"""SLUE-SA as a fine-tuning task: rows, encoding, the classifier, and scoring with the `slue_sa` metric.

The model reads one utterance in one modality; a classification head (`LSTForSequenceClassification` on the
mean of the decoder's final token states, or the baseline's `LlamaForSequenceClassification` on its last
token) predicts Negative / Neutral / Positive.
"""

from __future__ import annotations

import functools
import logging

import evaluate
import torch
from torch.utils.data import DataLoader
from transformers import LlamaForSequenceClassification

from lst_speech.evaluation.metrics import metric_path
from lst_speech.evaluation.slue.data import SENTIMENT_LABELS, sentiment_examples
from lst_speech.evaluation.uncertainty import bootstrap_interval
from lst_speech.modeling_lst import LSTForSequenceClassification
from lst_speech.training.finetuning.slue_data import model_type_of, segment_of, slue_rows

logger = logging.getLogger("lst.finetune")
SLUE_SA_METRIC = metric_path("slue_sa")


class SentimentTask:
    name = "slue-sa"
    lora_task = "classification"
    score_name = "macro_f1"  # what best-checkpoint selection maximises
    greater_is_better = True

    @functools.cached_property
    def metric(self):
        """The slue_sa module, loaded once per task rather than at every evaluation."""
        return evaluate.load(SLUE_SA_METRIC)

    def rows(self, path: str, unit_extractor=None) -> list[dict]:
        """`{id, text, label, units}` rows; rows with another sentiment (SLUE's `<mixed>`) are counted and logged."""
        dataset, units = slue_rows("voxceleb", path, unit_extractor)
        rows, other = sentiment_examples(dataset)
        if other:
            logger.info("%s: %d rows with other sentiments left out (%s), as SLUE scores only the three classes",
                        path, sum(other.values()), dict(other))
        return [{**row, "units": units.get(row["id"])} for row in rows]

    def encode(self, rows: list[dict], tokenizer, modality: str, max_length: int) -> list[dict]:
        """Token ids of each row's utterance in `modality`, with its label index. Over-long rows are refused,
        never cut."""
        encoded = []
        for row in rows:
            ids = tokenizer(segments=[segment_of(row, modality)])["input_ids"]
            if len(ids) > max_length:
                raise ValueError(f"Row {row['id']!r} is {len(ids)} tokens long in {modality}, over --max_length "
                                 f"{max_length}: raise it (the model's positions allow it) or shorten the input.")
            encoded.append({"id": row["id"], "input_ids": ids, "labels": SENTIMENT_LABELS.index(row["label"])})
        return encoded

    def load_model(self, model_name_or_path: str):
        """The pretrained LM with a new 3-way classification head, and its type ("lst" or "llama")."""
        model_type = model_type_of(model_name_or_path)
        head_class = LSTForSequenceClassification if model_type == "lst" else LlamaForSequenceClassification
        model = head_class.from_pretrained(model_name_or_path, num_labels=len(SENTIMENT_LABELS),
                                           id2label=dict(enumerate(SENTIMENT_LABELS)),
                                           label2id={name: i for i, name in enumerate(SENTIMENT_LABELS)})
        return model, model_type

    def collate(self, tokenizer):
        def collate_batch(examples):
            batch = tokenizer.pad({"input_ids": [e["input_ids"] for e in examples]}, return_tensors="pt")
            return {**batch, "labels": torch.tensor([e["labels"] for e in examples])}

        return collate_batch

    def evaluate(self, model, tokenizer, examples: list[dict], accelerator, batch_size: int = 16) -> dict:
        """slue_sa on `examples`: macro F1 (with a 95% bootstrap interval), macro recall, per-label F1. The rows
        are shared out over the processes and gathered back."""
        loader = accelerator.prepare_data_loader(DataLoader(examples, batch_size=batch_size,
                                                            collate_fn=self.collate(tokenizer)))
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
        metric = self.metric
        result = metric.compute(predictions=names[0], references=names[1])

        def macro_f1(predictions, references):
            # The module's own scoring, without `compute`'s per-call Arrow cache (milliseconds x resamples).
            return metric._compute(predictions=list(predictions), references=list(references))["macro_f1"]

        result["macro_f1_ci95"] = list(bootstrap_interval(macro_f1, *names, resamples=200))
        return result

    def summary(self, scores: dict) -> str:
        return "macro F1 %.3f [%.3f, %.3f]" % (scores["macro_f1"], *scores["macro_f1_ci95"])
