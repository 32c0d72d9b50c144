"""SLUE-NER as a fine-tuning task by generation: the model reads an utterance and writes its tagged transcript.

Each example is `<s> [input in the training modality] <text> [tagged transcript] </s>` (lst_speech.training.finetuning.generation_task
encodes, batches and generates). Targets use SLUE's raw tag characters, the only ones its scorer reads; with
`tag_set="combined"` the entities that the combined set discards are left untagged. The greedy output is scored
with the `slue_ner` metric on the labels it was trained for and, for raw tags, also on the combined labels that
SLUE reports (the same text, read with the other label set).
"""

from __future__ import annotations

import functools

import evaluate

from lst_speech.evaluation.metrics import metric_path
from lst_speech.evaluation.slue.data import ner_examples
from lst_speech.evaluation.uncertainty import bootstrap_interval
from lst_speech.training.finetuning.generation_task import GenerationTask
from lst_speech.training.finetuning.slue_data import slue_rows

SLUE_NER_METRIC = metric_path("slue_ner")


class NerTask(GenerationTask):
    name = "slue-ner"
    score_name = "f1"

    def __init__(self, tag_set: str = "raw", max_new_tokens: int = 96):
        if tag_set not in ("raw", "combined"):
            raise ValueError(f"The NER tag set must be 'raw' or 'combined', got {tag_set!r}.")
        super().__init__(max_new_tokens)
        self.tag_set = tag_set

    @functools.cached_property
    def metrics(self) -> dict:
        """The slue_ner module per tag set scored, loaded once per task rather than at every evaluation."""
        names = {self.tag_set, "combined"} if self.tag_set == "raw" else {self.tag_set}
        return {name: evaluate.load(SLUE_NER_METRIC, config_name=name) for name in names}

    def rows(self, path: str, unit_extractor=None) -> list[dict]:
        """`{id, text, tagged, units}` rows: the transcript and its tagged form in `tag_set`."""
        dataset, units = slue_rows("voxpopuli", path, unit_extractor)
        return [{**row, "units": units.get(row["id"])} for row in ner_examples(dataset, self.tag_set)]

    def target_segment(self, row: dict) -> str:
        return row["tagged"]

    def reference_of(self, row: dict, target_ids: list[int], tokenizer) -> str:
        return row["tagged"]

    def score(self, predictions: list[str], references: list[str]) -> dict:
        metric = self.metrics[self.tag_set]
        result = metric.compute(predictions=predictions, references=references)

        def f1(predicted, gold):
            # The module's own scoring, without `compute`'s per-call Arrow cache (milliseconds x resamples).
            return metric._compute(predictions=list(predicted), references=list(gold))["f1"]

        result["f1_ci95"] = list(bootstrap_interval(f1, predictions, references, resamples=200))
        if self.tag_set == "raw":
            combined = self.metrics["combined"].compute(predictions=predictions, references=references)
            result.update({f"combined_{key}": value for key, value in combined.items()
                           if key in ("f1", "label_f1", "precision", "recall")})
        return result

    def summary(self, scores: dict) -> str:
        text = "F1 %.3f [%.3f, %.3f], label-F1 %.3f" % (scores["f1"], *scores["f1_ci95"], scores["label_f1"])
        if "combined_f1" in scores:
            text += ", combined F1 %.3f" % scores["combined_f1"]
        return text + " (%d unfinished)" % scores["unfinished"]
