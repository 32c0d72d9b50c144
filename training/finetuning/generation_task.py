"""What every fine-tuning task that writes its answer shares: prompt + target encoding, batching, generation.

Each example is `<s> [input in the input modality] <marker> [target] </s>` where the marker is the target's
modality marker; the loss covers the target and its end only. At evaluation the model continues the prompt
(up to and including the marker) greedily, restricted to the target modality's ids
(`lst_speech.modeling_lst.modality`), and a subclass scores what it wrote. Generation also reports how many outputs hit
`max_new_tokens` before the end of sequence (scored as they stand, and counted) and the generation steps:
the global transformer's steps (LST: one per closed patch; the baseline: one per token) against the tokens.

A subclass sets `name`, `score_name`, `greater_is_better` and `output_modality`, and defines `rows`,
`target_segment`, `reference_of`, `score` and `summary`.
"""

from __future__ import annotations

import numpy as np
import torch
from accelerate.utils import gather_object
from transformers import LlamaForCausalLM, LogitsProcessorList

from lst_speech.modeling_lst import LSTForCausalLM
from lst_speech.modeling_lst.modality import ModalityLogitsProcessor
from lst_speech.modeling_lst.patching import static_patch_starts
from lst_speech.training.finetuning.slue_data import model_type_of, segment_of

IGNORE_INDEX = -100


class GenerationTask:
    lora_task = "generation"
    greater_is_better = True
    output_modality = "text"

    def __init__(self, max_new_tokens: int = 96):
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}.")
        self.max_new_tokens = max_new_tokens

    def target_segment(self, row: dict):
        """The row's answer as a tokenizer segment (a string, or a unit array)."""
        raise NotImplementedError

    def reference_of(self, row: dict, target_ids: list[int], tokenizer):
        """What the generated output is scored against (`target_ids`: the target's tokens, without its end)."""
        raise NotImplementedError

    def marker_id(self, tokenizer) -> int:
        return tokenizer.text_marker_id if self.output_modality == "text" else tokenizer.speech_marker_id

    def encode(self, rows: list[dict], tokenizer, modality: str, max_length: int) -> list[dict]:
        """Prompt + target ids with labels only on the target, and the prompt alone for generation. Over-long
        rows are refused, never cut."""
        encoded = []
        for row in rows:
            prompt = tokenizer(segments=[segment_of(row, modality)])["input_ids"] + [self.marker_id(tokenizer)]
            # Without special tokens a segment is `<marker> tokens`; its marker is already in the prompt.
            target = tokenizer(segments=[self.target_segment(row)], add_special_tokens=False)["input_ids"][1:]
            target.append(tokenizer.eos_token_id)
            if len(prompt) + len(target) > max_length:
                raise ValueError(f"Row {row['id']!r} is {len(prompt) + len(target)} tokens long in {modality} with "
                                 f"its target, over --max_length {max_length}: raise it or shorten the row.")
            encoded.append({"id": row["id"], "input_ids": prompt + target,
                            "labels": [IGNORE_INDEX] * len(prompt) + target, "prompt_ids": prompt,
                            "reference": self.reference_of(row, target[:-1], tokenizer)})
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

    def output_of(self, segments: list):
        """The generated segments as the task scores them: the text segments joined, or the units concatenated."""
        if self.output_modality == "text":
            return " ".join(s for s in segments if isinstance(s, str))
        arrays = [np.asarray(s) for s in segments if not isinstance(s, str)]
        return np.concatenate(arrays).tolist() if arrays else []

    def generate(self, model, tokenizer, examples: list[dict], batch_size: int = 16) -> tuple[list, dict]:
        """Greedy outputs for `examples` (their `prompt_ids`), and the generation counts: `unfinished` (outputs
        that reached `max_new_tokens` before the end of sequence), `tokens` generated and `global_steps`."""
        processors = LogitsProcessorList([ModalityLogitsProcessor.from_tokenizer(tokenizer, self.output_modality)])
        outputs, counts = [], {"unfinished": 0, "tokens": 0, "global_steps": 0}
        for first in range(0, len(examples), batch_size):
            prompts = [e["prompt_ids"] for e in examples[first:first + batch_size]]
            width = max(map(len, prompts))
            pad = tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=model.device)
            attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts],
                                          device=model.device)
            generated = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                                       max_new_tokens=self.max_new_tokens, logits_processor=processors,
                                       eos_token_id=tokenizer.eos_token_id, pad_token_id=pad)
            for prompt, row in zip(prompts, generated.tolist()):
                continuation = row[width:]
                if tokenizer.eos_token_id in continuation:
                    continuation = continuation[: continuation.index(tokenizer.eos_token_id) + 1]
                else:
                    counts["unfinished"] += 1
                counts["tokens"] += len(continuation)
                counts["global_steps"] += generation_steps(model, tokenizer, prompt, continuation)
                outputs.append(self.output_of(tokenizer.decode_segments(continuation)))
        return outputs, counts

    def evaluate(self, model, tokenizer, examples: list[dict], accelerator, batch_size: int = 16) -> dict:
        """The task's scores on greedy outputs, with the generation counts. Each process generates for its
        share of the rows."""
        generator = accelerator.unwrap_model(model)
        generator.eval()
        share = list(range(accelerator.process_index, len(examples), accelerator.num_processes))
        with torch.no_grad():
            outputs, counts = self.generate(generator, tokenizer, [examples[i] for i in share], batch_size)
        generator.train()
        gathered = gather_object([(i, output) for i, output in zip(share, outputs)])
        predictions = [output for _, output in sorted(gathered, key=lambda pair: pair[0])]
        for name in list(counts):
            counts[name] = sum(gather_object([counts[name]]))
        result = self.score(predictions, [e["reference"] for e in examples])
        result.update(counts, unfinished_rate=counts["unfinished"] / len(examples),
                      global_steps_per_token=counts["global_steps"] / max(counts["tokens"], 1),
                      examples=[{"id": e["id"], "reference": e["reference"], "prediction": p}
                                for e, p in zip(examples[:3], predictions)])
        return result


def generation_steps(model, tokenizer, prompt: list[int], continuation: list[int]) -> int:
    """The global transformer's steps spent on `continuation` after `prompt`: one per token for the baseline;
    for LST one per patch begun within the continuation (each is one global step when it closes), under the
    static patching it generates with: a speech run cut every `patch_size` tokens, every other token its own
    patch."""
    if not isinstance(model.config, LSTForCausalLM.config_class):
        return len(continuation)
    ids = torch.tensor([prompt + continuation])
    speech = ids >= tokenizer.speech_token_offset
    starts = static_patch_starts(speech, model.config.patch_size)[0]
    return int(starts[len(prompt):].sum())
