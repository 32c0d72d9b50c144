"""SLUE-NER as a fine-tuning task by generation: the model reads an utterance and writes its tagged transcript.

Each example is `<s> [input in the training modality] <text> [tagged transcript] </s>`; the loss covers the
tagged transcript and its end only. At evaluation the model continues the prompt (up to and including the
text marker) greedily, restricted to text ids, and the output is scored with the `slue_ner` metric: on the
tag set it was trained on and, for raw tags, also on the combined set that SLUE reports (raw tags map onto it).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import evaluate
import torch
from accelerate.utils import gather_object
from transformers import LlamaForCausalLM, LogitsProcessorList

from evaluation.slue import _slue_ner_format, ner_examples
from evaluation.uncertainty import bootstrap_interval
from modeling_lst import LSTForCausalLM
from modeling_lst.modality import ModalityLogitsProcessor
from training.slue_data import model_type_of, segment_of, slue_rows

logger = logging.getLogger("lst.finetune")
SLUE_NER_METRIC = Path(__file__).resolve().parent.parent / "evaluation" / "metrics" / "slue_ner"
IGNORE_INDEX = -100


class NerTask:
    name = "slue-ner"
    lora_task = "generation"
    score_name = "f1"

    def __init__(self, tag_set: str = "raw", max_new_tokens: int = 96):
        if tag_set not in ("raw", "combined"):
            raise ValueError(f"The NER tag set must be 'raw' or 'combined', got {tag_set!r}.")
        self.tag_set, self.max_new_tokens = tag_set, max_new_tokens

    @functools.cached_property
    def metrics(self) -> dict:
        """The slue_ner module per tag set scored, loaded once per task rather than at every evaluation."""
        names = {self.tag_set, "combined"} if self.tag_set == "raw" else {self.tag_set}
        return {name: evaluate.load(str(SLUE_NER_METRIC), config_name=name) for name in names}

    def rows(self, path: str, unit_extractor=None) -> list[dict]:
        """`{id, text, tagged, units}` rows: the transcript and its tagged form in `tag_set`."""
        dataset, units = slue_rows("voxpopuli", path, unit_extractor)
        return [{**row, "units": units.get(row["id"])} for row in ner_examples(dataset, self.tag_set)]

    def encode(self, rows: list[dict], tokenizer, modality: str, max_length: int) -> list[dict]:
        """Prompt + target ids with labels only on the target, and the prompt alone for generation. Over-long
        rows are refused, never cut."""
        encoded = []
        for row in rows:
            prompt = tokenizer(segments=[segment_of(row, modality)])["input_ids"] + [tokenizer.text_marker_id]
            # Without special tokens the text segment is `<text> pieces`; its marker is already in the prompt.
            target = tokenizer(segments=[row["tagged"]], add_special_tokens=False)["input_ids"][1:]
            target.append(tokenizer.eos_token_id)
            if len(prompt) + len(target) > max_length:
                raise ValueError(f"Row {row['id']!r} is {len(prompt) + len(target)} tokens long in {modality} with "
                                 f"its tagged transcript, over --max_length {max_length}: raise it or shorten it.")
            encoded.append({"id": row["id"], "input_ids": prompt + target,
                            "labels": [IGNORE_INDEX] * len(prompt) + target, "prompt_ids": prompt,
                            "reference": row["tagged"]})
        return encoded

    def load_model(self, model_name_or_path: str):
        model_type = model_type_of(model_name_or_path)
        model_class = LSTForCausalLM if model_type == "lst" else LlamaForCausalLM
        return model_class.from_pretrained(model_name_or_path), model_type

    def collate(self, tokenizer):
        def collate_batch(examples):
            batch = tokenizer.pad({"input_ids": [e["input_ids"] for e in examples]}, return_tensors="pt",
                                  padding_side="right")
            width = batch["input_ids"].shape[1]
            labels = [e["labels"] + [IGNORE_INDEX] * (width - len(e["labels"])) for e in examples]
            return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                    "labels": torch.tensor(labels)}

        return collate_batch

    def generate(self, model, tokenizer, examples: list[dict], batch_size: int = 16) -> tuple[list[str], int]:
        """Greedy tagged transcripts for `examples` (their `prompt_ids`), and how many reached
        `max_new_tokens` before the end of sequence (their output is scored as it stands, and counted)."""
        processors = LogitsProcessorList([ModalityLogitsProcessor.from_tokenizer(tokenizer, "text")])
        outputs, unfinished = [], 0
        for first in range(0, len(examples), batch_size):
            prompts = [e["prompt_ids"] for e in examples[first:first + batch_size]]
            width = max(map(len, prompts))
            pad = tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=model.device)
            attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts],
                                          device=model.device)
            generated = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                                       max_new_tokens=self.max_new_tokens, logits_processor=processors,
                                       eos_token_id=tokenizer.eos_token_id, pad_token_id=pad)[:, width:]
            for row in generated.tolist():
                unfinished += tokenizer.eos_token_id not in row
                outputs.append(" ".join(s for s in tokenizer.decode_segments(row) if isinstance(s, str)))
        return outputs, unfinished

    def evaluate(self, model, tokenizer, examples: list[dict], accelerator, batch_size: int = 16) -> dict:
        """slue_ner F1 (with a 95% bootstrap interval over sentences) and label-F1 on greedy outputs; for raw
        tags, the same on the combined tag set. Each process generates for its share of the rows."""
        generator = accelerator.unwrap_model(model)
        generator.eval()
        share = list(range(accelerator.process_index, len(examples), accelerator.num_processes))
        with torch.no_grad():
            outputs, unfinished = self.generate(generator, tokenizer, [examples[i] for i in share], batch_size)
        generator.train()
        gathered = gather_object([(i, text) for i, text in zip(share, outputs)])
        predictions = [text for _, text in sorted(gathered)]
        unfinished = sum(gather_object([unfinished]))
        references = [e["reference"] for e in examples]
        result = self.score(predictions, references)
        result.update(unfinished=unfinished, examples=[
            {"id": e["id"], "reference": e["reference"], "prediction": p} for e, p in zip(examples[:3], predictions)])
        return result

    def score(self, predictions: list[str], references: list[str]) -> dict:
        metric = self.metrics[self.tag_set]
        result = metric.compute(predictions=predictions, references=references)

        def f1(predicted, gold):
            # The module's own scoring, without `compute`'s per-call Arrow cache (milliseconds x resamples).
            return metric._compute(predictions=list(predicted), references=list(gold))["f1"]

        result["f1_ci95"] = list(bootstrap_interval(f1, predictions, references, resamples=200))
        if self.tag_set == "raw":
            to_combined = _slue_ner_format().raw_to_combined
            combined = self.metrics["combined"].compute(
                predictions=[to_combined(p) for p in predictions], references=[to_combined(r) for r in references])
            result.update({f"combined_{key}": value for key, value in combined.items()
                           if key in ("f1", "label_f1", "precision", "recall")})
        return result

    def summary(self, scores: dict) -> str:
        text = "F1 %.3f [%.3f, %.3f], label-F1 %.3f" % (scores["f1"], *scores["f1_ci95"], scores["label_f1"])
        if "combined_f1" in scores:
            text += ", combined F1 %.3f" % scores["combined_f1"]
        return text + " (%d unfinished)" % scores["unfinished"]
