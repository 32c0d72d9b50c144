"""Model cards for released LST and baseline checkpoints, with the run's own numbers as `model-index` metadata.

`run_facts` gathers what a pretraining run recorded (steps, tokens, FLOPs from the accounting, time, held-out
loss); callers add what only they know (the data recipe and realised speech:text ratio, multiple-choice and
SLUE results). `model_card` turns the facts into a `huggingface_hub` `ModelCard` whose `ModelCardData` carries
every score as an `EvalResult`, so the Hub's evaluation widgets and `model-index` parsers read them. Nothing
is filled in that the run did not measure: an absent score is left out, never written as a placeholder.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

CITATIONS = """```bibtex
@article{lst2025,
  title   = {Latent Speech-Text Transformer},
  journal = {arXiv preprint arXiv:2510.06195},
  year    = {2025}
}
@article{sutlm2023,
  title   = {Toward Joint Language Modeling for Speech Units and Text},
  journal = {arXiv preprint arXiv:2310.08715},
  year    = {2023}
}
```"""


def hardware() -> str:
    """Where this process runs: the accelerator's name, or the CPU with its core count."""
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def run_facts(run_dir: str | Path) -> dict:
    """What a pretraining run's output records: steps, tokens, training FLOPs (the accounting's, summed over
    the log's windows), training time, and the held-out loss when it was evaluated."""
    run_dir = Path(run_dir)
    log_file = run_dir / "log.jsonl"
    if not log_file.is_file():
        raise ValueError(f"{run_dir} has no log.jsonl: pass the output_dir of a pretraining run.")
    rows = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if "loss" in row]  # training windows; evaluation rows (eval_ keys) have none
    if not rows:
        raise ValueError(f"{log_file} is empty: the run logged no step.")
    facts = {"training": {
        "steps": rows[-1]["step"], "train_seconds": sum(r["window_seconds"] for r in rows),
        "tokens": sum(r.get("tokens", r["tokens_per_second"] * r["window_seconds"]) for r in rows),
        "final_train_loss": rows[-1]["loss"],
    }}
    if all("flops" in r for r in rows):
        facts["training"]["flops"] = 3 * sum(r["flops"] for r in rows)  # the accounting counts forward passes
    recorded = run_dir / "run.json"  # written by pretrain.py: the shape, patching and hardware it ran with
    if recorded.is_file():
        info = json.loads(recorded.read_text())
        facts["preset"] = info.get("preset")
        facts["training"].update({k: info[k] for k in ("hardware", "num_processes", "patching_mode") if k in info})
    evaluated = run_dir / "eval_results.json"
    if evaluated.is_file():
        facts["evaluation"] = {"held_out_loss": json.loads(evaluated.read_text())}
    return facts


def _eval_results(name: str, evaluation: dict, dataset: dict) -> list[EvalResult]:
    results = []
    common = dict(dataset_type=dataset["id"], dataset_name=dataset["name"])
    for key, value in evaluation.get("held_out_loss", {}).items():
        results.append(EvalResult(task_type="text-generation", task_name="held-out loss", metric_type="loss",
                                  metric_name=f"held-out {key.replace('_', ' ')} (nats per token)",
                                  metric_value=round(float(value), 4), dataset_split="held-out", **common))
    for direction, scores in evaluation.get("topic_cloze", {}).items():
        results.append(EvalResult(
            task_type="multiple-choice", task_name=f"topic cloze {direction}", metric_type="accuracy",
            metric_name=f"{direction} accuracy (context gain; 95% CI {scores['ci95'][0]:.3f}-{scores['ci95'][1]:.3f},"
                        f" {scores['num_items']} items)",
            # the direction as the dataset config keeps the directions apart in model-index, which groups
            # results by (task, dataset)
            metric_value=round(float(scores["accuracy"]), 4), dataset_split="held-out", dataset_config=direction,
            **common))
    for key, value in evaluation.get("cra", {}).items():
        results.append(EvalResult(task_type="text-generation", task_name="context retrieval accuracy",
                                  metric_type="accuracy", metric_name=f"CRA {key}", metric_value=round(float(value), 4),
                                  **common))
    for cell in evaluation.get("slue", []):
        results.append(EvalResult(
            task_type="audio-classification" if cell["task"] == "slue-sa" else "token-classification",
            task_name=f"{cell['task']} train {cell['train_modality']} -> test {cell['test_modality']}",
            metric_type="f1", metric_name=cell["metric"], metric_value=round(float(cell["value"]), 4),
            dataset_type=cell["dataset_id"], dataset_name=cell["dataset_name"], dataset_split="test",
            dataset_config=f"{cell['train_modality']}->{cell['test_modality']}"))
    return results


def model_card(facts: dict) -> ModelCard:
    """The card of a released checkpoint from its facts (see `run_facts`; keys `name`, `model_type`, `preset`,
    `parameters`, `tokenizer`, `training`, `data`, `evaluation`, `dataset`, `license`)."""
    name, model_type = facts["name"], facts["model_type"]
    dataset = facts.get("dataset", {"id": "local", "name": "unspecified local data"})
    data = ModelCardData(
        language=["en"], license=facts.get("license", "apache-2.0"), library_name="transformers",
        pipeline_tag="text-generation", tags=["speech", "speech-units", "spoken-language-modeling", model_type],
        model_name=name, eval_results=_eval_results(name, facts.get("evaluation", {}), dataset) or None,
        base_model=facts.get("base_model"),
    )
    if facts.get("base_model"):
        data.library_name = "peft"
    training = facts.get("training", {})
    lines = [f"# {name}", "", _summary(model_type, facts.get("preset")), ""]
    lines += ["## Architecture", "", "| part | parameters |", "|---|---|"]
    lines += [f"| {part.replace('_', ' ')} | {count:,} |" for part, count in facts["parameters"].items()]
    layout = facts.get("tokenizer")
    if layout:
        lines += ["", "## Tokenizer", "", "`SpeechUnitTextTokenizer` (`AutoTokenizer` with `trust_remote_code=True`):", ""]
        lines += [f"- **{key}**: {value}" for key, value in layout.items()]
    lines += ["", "## Training", ""]
    if facts.get("data"):
        lines += [f"- **{key}**: {value}" for key, value in facts["data"].items()]
    for key, label in (("steps", "steps"), ("tokens", "tokens"), ("flops", "training FLOPs (accounting, 3 x forward)"),
                       ("train_seconds", "training time (s)"), ("final_train_loss", "final training loss")):
        if key in training:
            value = training[key]
            lines.append(f"- **{label}**: {value:,.0f}" if isinstance(value, (int, float)) and key != "final_train_loss"
                         else f"- **{label}**: {value:.4f}")
    lines.append(f"- **hardware**: {training.get('hardware', 'not recorded')}")
    for key in ("num_processes", "patching_mode"):
        if key in training:
            lines.append(f"- **{key.replace('_', ' ')}**: {training[key]}")
    lines += ["", "## Evaluation", ""]
    if data.eval_results:
        lines += ["| task | metric | value |", "|---|---|---|"]
        lines += [f"| {r.task_name} | {r.metric_name} | {r.metric_value} |" for r in data.eval_results]
    else:
        lines.append("This checkpoint was not evaluated.")
    lines += ["", "## Use", "", "```python", *_usage(facts), "```", "",
              "Intended for research on joint speech-unit / text language modelling: likelihood scoring, continuation in",
              "either modality, and fine-tuning (e.g. SLUE with LoRA). Speech goes in as discrete units from the unit",
              "extractor saved beside the weights (`extractor/`); the model does not produce audio by itself.", "",
              "## Limitations", "",
              facts.get("limitations", "Trained at small scale; not evaluated for safety or fairness. Units from another "
                                       "extractor than the one it was trained with are meaningless to it."),
              "", "## Citation", "", CITATIONS, ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def _summary(model_type: str, preset: str | None) -> str:
    if model_type == "lst":
        return (f"A Latent Speech-Text Transformer (LST{f', preset `{preset}`' if preset else ''}): speech units are "
                "pooled into latent patches by a local encoder, a global transformer runs over text tokens and "
                "patches, and a local decoder predicts every token.")
    return ("The vanilla baseline of LST: a Llama decoder over the same joint speech-unit / text vocabulary, with "
            "LST's global shape.")


def _usage(facts: dict) -> list[str]:
    """The lines that load the release: the model itself, or a LoRA adapter onto its base."""
    repo = facts.get("repo_id") or "org/name"
    tokenizer = f'tokenizer = AutoTokenizer.from_pretrained("{repo}", trust_remote_code=True)'
    if not facts.get("base_model"):
        return ["from transformers import AutoModelForCausalLM, AutoTokenizer",
                f'model = AutoModelForCausalLM.from_pretrained("{repo}", trust_remote_code=True)', tokenizer]
    classification = facts.get("task_type") == "SEQ_CLS"
    auto = "AutoModelForSequenceClassification" if classification else "AutoModelForCausalLM"
    labels = ", num_labels=3" if classification else ""  # SLUE-SA: Negative, Neutral, Positive
    return ["from peft import PeftModel", f"from transformers import {auto}, AutoTokenizer",
            f'base = {auto}.from_pretrained("{facts["base_model"]}"{labels}, trust_remote_code=True)',
            f'model = PeftModel.from_pretrained(base, "{repo}")', tokenizer]
