"""`lst experiment`: the LST paper's controlled comparisons as one resumable command.

LST (one or more patching variants) and the Llama baseline are trained from the same tokenizer and data,
for the same number of steps, under a protocol (`../shared/research/lst_blt.md`, section 3):

- `compute`: the baseline's tokens per step equal LST's global positions per step (its sequences are packed
  by tokens to the length LST's are packed by static patches), so both spend about the same compute and LST
  sees more data;
- `data`: both train on the same sequences (the same tokens), so LST spends less compute.

LST trains on the same sequences under both protocols, so one `--output_dir` holds both: each protocol adds
its own baseline (`llama+compute`, `llama+data`), and a second protocol run in a folder trains only its baseline
(the corpus, the tokenizer and the LST runs are kept).

Axes: LST patching variants (`static`, `aligned`, `bpe`, `curriculum`, ..., with `:merged` for silences
merged into words and `:piece` for curriculum or mixed over BPE pieces), speech:text token ratios of the
training mixture (`--speech_per_text 1.0 0.5 0.25`), and seeds. Every run is evaluated on the same held-out
loss and the same spoken topic cloze (S->S and T->T by default); the FLOPs each run used come from the
accounting in its log (three times the forward FLOPs, checked to cover every step). One report (markdown,
JSON, PNG) states the protocol; cells over several seeds give their mean and spread, single-seed
accuracies their 95% Wilson interval.

A finished run keeps its `results.json` and is not run again, so a killed experiment resumes where it stopped
(an unfinished run continues from its last checkpoint), and running again with another variant, ratio or
protocol in the same `--output_dir` adds it to the same report. Arguments or a YAML file, as `lst_speech.training.pretrain`:

    lst experiment --protocol compute --patching curriculum bpe --speech_per_text 1.0 0.5 --seeds 0 1
    lst experiment --protocol data --patching curriculum bpe --speech_per_text 1.0 0.5 --seeds 0 1  # + baselines
    lst experiment experiment.yaml [--max_steps 300]
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lst_speech.modeling_lst.configuration_lst import PATCHING_MODES
from lst_speech.tokenization.atomic_files import write_text_atomically
from lst_speech.tokenization.output_safety import claim_directory
from lst_speech.training.arguments import parse_script_arguments
from lst_speech.training.checkpoints import latest_checkpoint
from lst_speech.training.experiments.main_job_report import training_summary
from lst_speech.training.experiments.runs import (
    MainJobArguments,
    build_training_data,
    curriculum,
    evaluate,
    prepare_corpus,
    pretrain_command,
    split_bible,
    topic_cloze_items,
    train_data_for,
)

logger = logging.getLogger("lst.experiment")
VARIANT_OPTIONS = {"merged": ("aligned_silences", "merged"), "piece": ("aligned_by", "piece")}
BASELINE = "llama"
# Settings a folder's runs may differ in: the report's axes, and where the folder is (it may be moved).
NOT_COMPARED = ("patching", "speech_per_text", "seeds", "protocol", "output_dir")


def baseline_name(protocol: str) -> str:
    """The baseline's model name under `protocol` (its run folder, with `+` for `:`)."""
    return f"{BASELINE}:{protocol}"


@dataclass
class ExperimentArguments(MainJobArguments):
    output_dir: str = "outputs/experiment"
    patching: list[str] = field(default_factory=lambda: ["curriculum"], metadata={
        "help": f"LST patching variants: a mode of {PATCHING_MODES}, with ':merged' (silences merged into words) "
                "and/or ':piece' (aligned side by BPE pieces)"})
    speech_per_text: list[float] = field(default_factory=list, metadata={
        "help": "speech:text token ratios of the training mixture (an axis); none: the recipe's own weights"})
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "one run per seed and cell"})
    directions: list[str] = field(default_factory=lambda: ["S->S", "T->T"], metadata={
        "help": "topic cloze directions every run is evaluated in"})

    def __post_init__(self):
        super().__post_init__()
        for variant in self.patching:
            patching_flags(variant, self.max_steps)  # refuses unknown modes and options before anything runs
        if any(not ratio > 0 for ratio in self.speech_per_text):
            raise ValueError(f"speech_per_text values must be positive, got {self.speech_per_text}.")
        from lst_speech.evaluation.multiple_choice_data import DIRECTIONS

        if not self.directions or set(self.directions) - set(DIRECTIONS):
            raise ValueError(f"directions must be some of {DIRECTIONS}, got {self.directions}.")


def patching_flags(variant: str, steps: int) -> dict:
    """`lst_speech.training.pretrain` flags of an LST variant such as `bpe`, `aligned:merged` or `curriculum:piece`."""
    mode, *options = variant.split(":")
    if mode not in PATCHING_MODES:
        raise ValueError(f"Unknown patching mode {mode!r} in variant {variant!r}; choose one of {PATCHING_MODES}.")
    unknown = [o for o in options if o not in VARIANT_OPTIONS]
    if unknown:
        raise ValueError(f"Unknown option(s) {unknown} in variant {variant!r}; the options are "
                         f"{sorted(VARIANT_OPTIONS)}.")
    flags = curriculum(steps) if mode == "curriculum" else {"patching_mode": mode}
    flags.update(dict(VARIANT_OPTIONS[o] for o in options))
    return flags


def ratio_name(ratio: float | None) -> str:
    return "recipe" if ratio is None else f"speech_per_text-{ratio:g}"


def prepare(arguments: ExperimentArguments, output_dir: Path):
    """The corpus, tokenizer and held-out data once, then the training data of each ratio (kept between runs)."""
    import datasets

    from lst_speech.evaluation.multiple_choice_data import spoken_items, text_items
    from lst_speech.tokenization import SpeechUnitTextTokenizer
    from lst_speech.tokenization.speech.espeak import EspeakSynthesizer
    from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor
    from lst_speech.training.data.recipes import RECIPES

    facts_file = output_dir / "corpus_facts.json"
    if facts_file.exists():  # an experiment run again: the corpus, tokenizer and held-out data are kept
        shared = json.loads(facts_file.read_text())
        tokenizer = SpeechUnitTextTokenizer.from_pretrained(output_dir / "tokenizer")
        extractor = load_unit_extractor(output_dir / "extractor")
        train, held_out = split_bible(arguments.held_out_every)
        corpus = datasets.load_from_disk(str(output_dir / "corpus"))
        # By split since 2026-12-03; an experiment folder from before holds one dataset, training rows first.
        paired = (corpus["train"] if isinstance(corpus, datasets.DatasetDict)
                  else corpus.select(range(shared["spoken_train_utterances"])))
        sources = {"paired": paired, "text": datasets.Dataset.from_dict({"text": [r["text"] for r in train]})}
    else:
        tokenizer, extractor, held_out, sources, shared = prepare_corpus(arguments, output_dir)
        write_text_atomically(facts_file, json.dumps(shared, indent=2))
    ratios = {}
    for ratio in arguments.speech_per_text or [None]:
        directory = output_dir / "data" / ratio_name(ratio)
        facts_path = directory / "facts.json"
        if not facts_path.exists():
            recipe = RECIPES["lst"].replace(sequence_length=arguments.sequence_length, speech_per_text=ratio)
            facts = build_training_data(recipe, tokenizer, sources, directory, arguments.seed)
            write_text_atomically(facts_path, json.dumps(facts, indent=2))
        ratios[ratio] = {"directory": directory, **json.loads(facts_path.read_text())}
    cloze = topic_cloze_items(held_out, arguments.cloze_items, 8, 24, arguments.seed)
    synthesizer, spoken = EspeakSynthesizer(), {}
    items = {d: text_items(cloze) if d == "T->T" else spoken_items(cloze, d, synthesizer, extractor, spoken)
             for d in arguments.directions}
    return shared, ratios, items


def run_one(arguments: ExperimentArguments, output_dir: Path, run_dir: Path, model: str, data_dir: Path,
            seed: int, items: dict) -> dict:
    """Train and evaluate one run, or read the results it already has; an unfinished run resumes."""
    results_file = run_dir / "results.json"
    if results_file.exists():
        return json.loads(results_file.read_text())
    model_type = "llama" if model == baseline_name(arguments.protocol) else "lst"
    flags = None if model_type == "llama" else patching_flags(model, arguments.max_steps)
    command = pretrain_command(run_dir, train_data_for(model_type, arguments.protocol, data_dir), output_dir,
                               model_type, arguments, seed, flags)
    command += ["--save_steps", str(max(1, arguments.max_steps // 4)), "--report_to", "none"]
    if run_dir.exists() and latest_checkpoint(run_dir) is not None:
        command += ["--resume_from_checkpoint", "latest"]
    logger.info("training %s", run_dir.relative_to(output_dir))
    subprocess.run(command, check=True)
    results = evaluate(run_dir, items, name=str(run_dir.relative_to(output_dir)))
    log = results.pop("log")
    if log[-1]["step"] != arguments.max_steps:
        raise RuntimeError(f"{run_dir} stopped at step {log[-1]['step']} of {arguments.max_steps}.")
    results.update(training_summary(log))
    write_text_atomically(results_file, json.dumps(results, indent=2))
    return results


def collect(output_dir: Path) -> list[dict]:
    """Every finished run under `output_dir/runs`, with the cell it belongs to."""
    runs = []
    for results_file in sorted((output_dir / "runs").glob("*/*/*/results.json")):
        seed_dir = results_file.parent
        if seed_dir.parent.name == BASELINE:
            raise ValueError(f"{seed_dir.parent} is a baseline run from before protocols had their own baselines: "
                             f"rename the folder to {BASELINE}+<its protocol> (the protocol is in "
                             f"{output_dir / 'experiment.json'}) and run again.")
        runs.append({"ratio": seed_dir.parent.parent.name, "model": seed_dir.parent.name,
                     "seed": int(seed_dir.name.removeprefix("seed-")), **json.loads(results_file.read_text())})
    return runs


def main(argv: list[str] | None = None) -> None:
    (arguments,) = parse_script_arguments((ExperimentArguments,), argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import datasets

    datasets.disable_progress_bars()
    output_dir = claim_directory(arguments.output_dir, "lst experiment")  # it adds runs to its own folder only
    settings_file = output_dir / "experiment.json"
    shared_settings = {k: v for k, v in asdict(arguments).items() if k not in NOT_COMPARED}
    if settings_file.exists():  # runs added to an experiment must be comparable with the ones it has
        previous = json.loads(settings_file.read_text())
        changed = {k: (previous.get(k), v) for k, v in shared_settings.items() if previous.get(k) != v}
        if changed:
            raise ValueError(f"{output_dir} holds an experiment with other settings {changed} (before, now): add "
                             "variants, ratios, seeds or a protocol with the same settings, or use another "
                             "--output_dir.")
    write_text_atomically(settings_file, json.dumps(shared_settings, indent=2))
    shared, ratios, items = prepare(arguments, output_dir)
    for ratio, data in ratios.items():
        for model in [*arguments.patching, baseline_name(arguments.protocol)]:
            for seed in arguments.seeds:
                run_dir = output_dir / "runs" / ratio_name(ratio) / model.replace(":", "+") / f"seed-{seed}"
                run_one(arguments, output_dir, run_dir, model, data["directory"], seed, items)
    from lst_speech.training.experiments.experiment_report import write_experiment_report

    # Every mixture of the folder, not only this call's: the report covers every run the folder holds.
    data_facts = {facts.parent.name: json.loads(facts.read_text())
                  for facts in sorted((output_dir / "data").glob("*/facts.json"))}
    write_experiment_report(output_dir, shared_settings, shared, data_facts, collect(output_dir), BASELINE)
    logger.info("report: %s", output_dir / "report.md")


if __name__ == "__main__":
    main()
