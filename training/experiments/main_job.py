"""The README's main job: offline, from nothing to a report comparing LST with its Llama baseline.

1. Split the King James Bible (built in) by chapter: every `held_out_every`-th chapter is held out.
2. Speak verses with espeak-ng (exact word times), fit MFCC k-means units: a spoken corpus.
3. Train the joint tokenizer on the training text; build LST's data recipe (one third interleaved speech
   and text, two thirds text), packed by global positions; the same for held-out data.
4. Train a `small` LST (curriculum patching) and the Llama baseline of the same global shape for the same
   `max_steps`, under the LST paper's compute-controlled protocol (`--protocol compute`): the baseline's
   tokens per step equal LST's global positions (patches) per step, so both spend about the same compute
   and LST sees more data. `--protocol data` gives both the same sequences instead (the same tokens; LST
   spends less compute). The budget is a step count: wall-clock time is reported, never used to decide how
   much to train.
5. Evaluate both: held-out loss per modality, and a spoken topic cloze built from held-out chapters (the
   first half of a verse; its own second half against another passage's) in S->S, T->T, S->T and T->S. The
   held-out loss and the first `eval_cloze_items` cloze items in the four directions are also scored every
   `eval_steps` steps while each model trains (pretraining's `--eval_steps`), so the report shows when each
   direction leaves chance, not only where it ended.
6. Save the spoken corpus by split (`corpus/train`, `corpus/held_out`: text, units, word spans) for
   fine-tuning, export each model as a release with a card of this run's numbers (`releases/lst`,
   `releases/llama`), and write `report.md`, `report.json`, `loss_curves.png` and `topic_cloze.png`: every
   number from this run.

    python -m lst_speech.training.experiments.main_job [--max_steps 160] [--protocol compute] [--output_dir outputs/main_job]
        [--eval_steps 40] [--eval_cloze_items 40]
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
from transformers import HfArgumentParser

from lst_speech.evaluation.multiple_choice_data import DIRECTIONS, spoken_items, text_items, write_items
from lst_speech.model_cards.release import export_release
from lst_speech.tokenization.output_safety import claim_directory
from lst_speech.tokenization.speech.espeak import EspeakSynthesizer
from lst_speech.training.data.recipes import RECIPES
from lst_speech.training.experiments.main_job_report import write_report
from lst_speech.training.experiments.runs import (
    MODELS,
    MainJobArguments,
    build_training_data,
    curriculum,
    evaluate,
    prepare_corpus,
    pretrain_command,
    topic_cloze_items,
    train_data_for,
)

logger = logging.getLogger("lst.main_job")


@dataclass
class TrainingEvaluationArguments:
    """What the main job scores while the models train (`lst experiment` shares MainJobArguments, not these)."""

    eval_steps: int | None = field(default=None, metadata={
        "help": "score the held-out loss and the cloze items every N steps while training (default: a quarter of "
                "max_steps; 0: only after training)"})
    eval_cloze_items: int = field(default=40, metadata={"help": "the first N topic cloze items, in all four "
                                                                "directions, scored every eval_steps"})

    def __post_init__(self):
        if self.eval_steps is not None and self.eval_steps < 0:
            raise ValueError(f"eval_steps must be 0 (off) or positive, got {self.eval_steps}.")
        if self.eval_cloze_items < 2:
            raise ValueError(f"eval_cloze_items must be at least 2, got {self.eval_cloze_items}.")

    def steps(self, max_steps: int) -> int:
        return max(1, max_steps // 4) if self.eval_steps is None else self.eval_steps


def prepare(arguments: MainJobArguments, output_dir: Path):
    """Corpus, tokenizer and packed data (train, the baseline's train by tokens, and held-out)."""
    tokenizer, extractor, held_out, sources, facts = prepare_corpus(arguments, output_dir)
    recipe = RECIPES["lst"].replace(sequence_length=arguments.sequence_length)
    facts.update(build_training_data(recipe, tokenizer, sources, output_dir / "data", arguments.seed))
    return tokenizer, extractor, held_out, facts


def evaluation_flags(evaluation: TrainingEvaluationArguments, max_steps: int, cloze, output_dir: Path) -> list[str]:
    """Pretraining's flags for scoring the held-out loss and the first cloze items, in the four directions,
    every `eval_steps` (the items are written to `data/cloze_during_training.jsonl`)."""
    steps = evaluation.steps(max_steps)
    if not steps:
        return []
    items_file = output_dir / "data" / "cloze_during_training.jsonl"
    write_items(cloze[: evaluation.eval_cloze_items], items_file)
    return ["--eval_steps", str(steps), "--eval_multiple_choice", str(items_file),
            "--eval_multiple_choice_format", "items", "--eval_multiple_choice_directions", *DIRECTIONS,
            "--eval_multiple_choice_context_gain", "--eval_unit_extractor", str(output_dir / "extractor")]


def train(model_type: str, arguments: MainJobArguments, output_dir: Path, evaluation: list[str]) -> Path:
    run_dir = output_dir / model_type
    train_data = train_data_for(model_type, arguments.protocol, output_dir / "data")
    command = pretrain_command(run_dir, train_data, output_dir, model_type, arguments, arguments.seed,
                               curriculum(arguments.max_steps) if model_type == "lst" else None)
    started = time.perf_counter()
    subprocess.run([*command, "--save_steps", "0", *evaluation], check=True)
    logger.info("%s: %d steps in %.1f minutes", model_type, arguments.max_steps, (time.perf_counter() - started) / 60)
    return run_dir


def release_facts(model_type: str, facts: dict, results: dict) -> dict:
    """What the model card of a main-job model adds to its run's record: the data and the topic cloze."""
    mixture = facts["train_mixture"]
    return {
        "name": f"{model_type}-main-job",
        "dataset": {"id": "lst/kjv-espeak", "name": "King James Bible verses spoken by espeak-ng (the main job)"},
        "data": {"corpus": f"{facts['spoken_train_utterances']} spoken verses ({facts['speech_minutes']:.1f} minutes, "
                           f"{facts['num_units']} MFCC k-means units at 50 Hz) and {facts['text_train_verses']} text "
                           "verses; every 10th chapter held out",
                 "mixture (examples)": ", ".join(f"{k} {v:.1%}" for k, v in mixture["source_shares"].items()),
                 "speech:text tokens (realised)": f"{mixture['speech_per_text']:.2f} : 1"},
        "evaluation": {"topic_cloze": {
            direction: {"accuracy": scores["accuracy_context_gain"], "ci95": scores["accuracy_context_gain_ci95"],
                        "num_items": scores["num_items"]} for direction, scores in results["topic_cloze"].items()}},
    }


def main(argv: list[str] | None = None) -> None:
    parser = HfArgumentParser((MainJobArguments, TrainingEvaluationArguments))
    arguments, evaluation = parser.parse_args_into_dataclasses(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    datasets.disable_progress_bars()
    output_dir = claim_directory(arguments.output_dir, "lst_speech.training.experiments.main_job")
    started = time.perf_counter()
    tokenizer, extractor, held_out, facts = prepare(arguments, output_dir)
    cloze = topic_cloze_items(held_out, arguments.cloze_items, 8, 24, arguments.seed)
    during_training = evaluation_flags(evaluation, arguments.max_steps, cloze, output_dir)

    runs = {model_type: {"run_dir": train(model_type, arguments, output_dir, during_training)}
            for model_type in MODELS}

    synthesizer, spoken = EspeakSynthesizer(), {}
    items = {d: text_items(cloze) if d == "T->T" else spoken_items(cloze, d, synthesizer, extractor, spoken)
             for d in DIRECTIONS}
    results = {}
    for model_type, run in runs.items():
        results[model_type] = evaluate(run["run_dir"], items, name=model_type)
    for model_type, run in runs.items():  # releases beside the runs, with cards carrying this run's numbers
        export_release(run["run_dir"], output_dir / "releases" / model_type, output_dir / "extractor",
                       release_facts(model_type, facts, results[model_type]))
    facts["total_minutes"] = (time.perf_counter() - started) / 60
    settings = {**asdict(arguments), **asdict(evaluation), "eval_steps": evaluation.steps(arguments.max_steps)}
    write_report(output_dir, settings, facts, results)
    logger.info("report: %s (%.1f minutes in all)", output_dir / "report.md", facts["total_minutes"])


if __name__ == "__main__":
    main()
