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
   first half of a verse; its own second half against another passage's) in S->S, T->T, S->T and T->S.
6. Save the spoken corpus by split (`corpus/train`, `corpus/held_out`: text, units, word spans) for
   fine-tuning, and write `report.md`, `report.json`, `loss_curves.png` and `topic_cloze.png`: every number
   from this run.

    python -m training.main_job [--max_steps 160] [--protocol compute] [--output_dir outputs/main_job]
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
from transformers import AutoModelForCausalLM, HfArgumentParser

from evaluation.multiple_choice import multiple_choice_accuracy
from model_cards.release import export_release
from evaluation.multiple_choice_data import DIRECTIONS, TextItem, spoken_items, text_items, topic_story_cloze
from tokenization import SpeechUnitTextTokenizer
from tokenization.espeak import EspeakSynthesizer
from tokenization.sample_text import kjv_records
from tokenization.spoken_corpus import spoken_corpus_from_texts
from training.data_mixing import realised_ratios
from training.data_recipes import RECIPES, build_pretraining_data, pack_with_recipe
from training.main_job_report import PROTOCOLS, write_report

logger = logging.getLogger("lst.main_job")
MODELS = ("lst", "llama")


@dataclass
class MainJobArguments:
    output_dir: str = "outputs/main_job"
    spoken_utterances: int = field(default=1500, metadata={"help": "spoken training verses"})
    held_out_utterances: int = field(default=150, metadata={"help": "spoken held-out verses (for held-out loss)"})
    held_out_every: int = field(default=10, metadata={"help": "hold out every N-th chapter"})
    max_words: int = 30
    num_units: int = 100
    vocab_size: int = 1000
    max_steps: int = field(default=160, metadata={"help": "optimizer steps for each model: the training budget"})
    protocol: str = field(default="compute", metadata={"help": f"one of {sorted(PROTOCOLS)}: what the two models "
                                                                "share besides the step count"})
    preset: str = field(default="small", metadata={"help": "LST shape preset (the baseline takes its global shape)"})
    sequence_length: int = field(default=128, metadata={"help": "global positions per packed sequence"})
    batch_size: int = 8
    learning_rate: float = 1e-3
    cloze_items: int = 200
    seed: int = 0

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {self.protocol!r}.")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}.")


def split_bible(held_out_every: int) -> tuple[list[dict], list[dict]]:
    """Training and held-out verses, held out by whole chapters so that no passage leaks."""
    train, held_out, chapter, previous = [], [], -1, None
    for record in kjv_records():
        place = (record["book"], record["chapter"])
        if place != previous:
            chapter, previous = chapter + 1, place
        (held_out if chapter % held_out_every == held_out_every - 1 else train).append(record)
    return train, held_out


def short(records: list[dict], max_words: int) -> list[str]:
    return [r["text"] for r in records if len(r["text"].split()) <= max_words]


def topic_cloze_items(held_out: list[dict], count: int, min_words: int, max_words: int, seed: int) -> list[TextItem]:
    """TWIST's TopicStoryCloze construction within verses, from held-out chapters only: the prompt is the
    first half of a verse, the right ending its second half, the wrong ending the second half of another
    random item's verse (another passage, so another topic)."""
    verses = [r for r in held_out if min_words <= len(r["text"].split()) <= max_words]
    chosen = np.random.default_rng(seed).choice(len(verses), size=min(count, len(verses)), replace=False)
    items = []
    for index in sorted(chosen):
        words = verses[index]["text"].split()
        middle = len(words) // 2
        items.append(TextItem(verses[index]["citation"], " ".join(words[:middle]), [" ".join(words[middle:])], 0))
    return topic_story_cloze(items, seed=seed)


def prepare_corpus(arguments: MainJobArguments, output_dir: Path):
    """The spoken corpus, the tokenizer and the held-out packed data; the training sources for the recipes."""
    train, held_out = split_bible(arguments.held_out_every)
    spoken_train = short(train, arguments.max_words)[: arguments.spoken_utterances]
    spoken_held_out = short(held_out, arguments.max_words)[: arguments.held_out_utterances]
    started = time.perf_counter()
    corpus, extractor = spoken_corpus_from_texts(spoken_train + spoken_held_out, arguments.num_units,
                                                 seed=arguments.seed)
    corpus_train = corpus.select(range(len(spoken_train)))
    corpus_held_out = corpus.select(range(len(spoken_train), len(corpus)))
    # By split, so that fine-tuning (ASR, TTS) can train on corpus/train and score on corpus/held_out.
    datasets.DatasetDict({"train": corpus_train, "held_out": corpus_held_out}).save_to_disk(output_dir / "corpus")
    extractor.save_pretrained(output_dir / "extractor")
    speech_seconds = sum(len(u) for u in corpus["units"]) / extractor.frame_rate
    logger.info("spoke %d verses (%.1f min of speech) in %.0f s", len(corpus), speech_seconds / 60,
                time.perf_counter() - started)

    train_texts = [r["text"] for r in train]
    tokenizer = SpeechUnitTextTokenizer.train(train_texts, vocab_size=arguments.vocab_size, model_type="unigram",
                                              num_units=arguments.num_units)
    tokenizer.save_pretrained(output_dir / "tokenizer")
    recipe = RECIPES["lst"].replace(sequence_length=arguments.sequence_length)
    held_out_text = datasets.Dataset.from_dict({"text": [r["text"] for r in held_out][:3 * len(corpus_held_out)]})
    held_packed, _ = build_pretraining_data(recipe, tokenizer, paired=corpus_held_out, text=held_out_text,
                                            seed=arguments.seed)
    held_packed.save_to_disk(output_dir / "data" / "held_out")
    sources = {"paired": corpus_train, "text": datasets.Dataset.from_dict({"text": train_texts})}
    facts = {"spoken_train_utterances": len(corpus_train), "spoken_held_out_utterances": len(corpus_held_out),
             "speech_minutes": speech_seconds / 60, "text_train_verses": len(train_texts),
             "held_out_chapters_every": arguments.held_out_every, "vocab_size": len(tokenizer),
             "num_units": arguments.num_units}
    return tokenizer, extractor, held_out, sources, facts


def build_training_data(recipe, tokenizer, sources: dict, directory: Path, seed: int) -> dict:
    """LST's sequences (`train`, packed by the recipe's global positions) and the baseline's for the compute
    protocol (`train_tokens`: the same documents, as many tokens per sequence); returns the mixture facts."""
    mixed, _ = build_pretraining_data(recipe, tokenizer, **sources, seed=seed, pack_sequences=False)
    packed = pack_with_recipe(mixed, recipe)
    packed.save_to_disk(directory / "train")
    pack_with_recipe(mixed, recipe.replace(pack_unit="tokens")).save_to_disk(directory / "train_tokens")
    return {"packed_train_sequences": len(packed), "train_mixture": realised_ratios(mixed, tokenizer)}


def prepare(arguments: MainJobArguments, output_dir: Path):
    """Corpus, tokenizer and packed data (train, the baseline's train by tokens, and held-out)."""
    tokenizer, extractor, held_out, sources, facts = prepare_corpus(arguments, output_dir)
    recipe = RECIPES["lst"].replace(sequence_length=arguments.sequence_length)
    facts.update(build_training_data(recipe, tokenizer, sources, output_dir / "data", arguments.seed))
    return tokenizer, extractor, held_out, facts


def pretrain_command(run_dir: Path, train_data: Path, output_dir: Path, model_type: str, arguments: MainJobArguments,
                     seed: int, patching: dict | None = None) -> list[str]:
    """The `training.pretrain` command of one run: `arguments.max_steps` steps on `train_data`, evaluated on
    `output_dir/data/held_out`; `patching` holds LST's patching flags."""
    steps = arguments.max_steps
    command = [
        sys.executable, "-m", "training.pretrain", "--tokenizer", str(output_dir / "tokenizer"),
        "--train_data", str(train_data), "--eval_data", str(output_dir / "data" / "held_out"),
        "--output_dir", str(run_dir), "--model_type", model_type, "--preset", arguments.preset, "--max_steps", str(steps),
        "--per_device_batch_size", str(arguments.batch_size), "--learning_rate", str(arguments.learning_rate),
        "--warmup_steps", str(max(1, steps // 10)), "--logging_steps", str(max(1, steps // 40)), "--seed", str(seed),
    ]
    for flag, value in (patching or {}).items():
        command += [f"--{flag}", str(value)]
    return command


def curriculum(steps: int) -> dict:
    """LST's best recipe: aligned patches first, static (as at inference) last."""
    return {"patching_mode": "curriculum", "curriculum_aligned_until": steps // 3,
            "curriculum_static_from": 2 * steps // 3}


def train_data_for(model_type: str, protocol: str, data_dir: Path) -> Path:
    """The sequences a model trains on: under the compute protocol the baseline's are packed by tokens."""
    return data_dir / ("train_tokens" if model_type == "llama" and protocol == "compute" else "train")


def train(model_type: str, arguments: MainJobArguments, output_dir: Path) -> Path:
    run_dir = output_dir / model_type
    train_data = train_data_for(model_type, arguments.protocol, output_dir / "data")
    command = pretrain_command(run_dir, train_data, output_dir, model_type, arguments, arguments.seed,
                               curriculum(arguments.max_steps) if model_type == "lst" else None)
    started = time.perf_counter()
    subprocess.run([*command, "--save_steps", "0"], check=True)
    logger.info("%s: %d steps in %.1f minutes", model_type, arguments.max_steps, (time.perf_counter() - started) / 60)
    return run_dir


def evaluate(run_dir: Path, items: dict, batch_size: int = 16, name: str = "") -> dict:
    model = AutoModelForCausalLM.from_pretrained(run_dir / "final").eval()
    tokenizer = SpeechUnitTextTokenizer.from_pretrained(run_dir / "final")
    results = {"held_out_loss": json.loads((run_dir / "eval_results.json").read_text()),
               "parameters": sum(p.numel() for p in model.parameters())}
    with torch.no_grad():
        results["topic_cloze"] = {d: multiple_choice_accuracy(model, tokenizer, items[d], batch_size,
                                                              context_gain=True, progress=f"{name} {d}")
                                  for d in items}
    # Each item's outcome under context gain is kept (for paired comparisons between models on the same items);
    # the other normalisations' choices are not reported.
    for direction, scores in results["topic_cloze"].items():
        choices = scores["choices_context_gain"]
        scores["correct_context_gain"] = [int(choice == item.label) for choice, item in zip(choices, items[direction])]
        for key in [k for k in scores if k.startswith("choices_")]:
            scores.pop(key)
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    results["log"] = log
    return results


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
    (arguments,) = HfArgumentParser(MainJobArguments).parse_args_into_dataclasses(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    datasets.disable_progress_bars()
    output_dir = Path(arguments.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tokenizer, extractor, held_out, facts = prepare(arguments, output_dir)

    runs = {model_type: {"run_dir": train(model_type, arguments, output_dir)} for model_type in MODELS}

    synthesizer, spoken = EspeakSynthesizer(), {}
    cloze = topic_cloze_items(held_out, arguments.cloze_items, 8, 24, arguments.seed)
    items = {d: text_items(cloze) if d == "T->T" else spoken_items(cloze, d, synthesizer, extractor, spoken)
             for d in DIRECTIONS}
    results = {}
    for model_type, run in runs.items():
        results[model_type] = evaluate(run["run_dir"], items, name=model_type)
    for model_type, run in runs.items():  # the finals become releases, with cards carrying this run's numbers
        export_release(run["run_dir"], run["run_dir"] / "final", output_dir / "extractor",
                       release_facts(model_type, facts, results[model_type]))
    facts["total_minutes"] = (time.perf_counter() - started) / 60
    write_report(output_dir, asdict(arguments), facts, results)
    logger.info("report: %s (%.1f minutes in all)", output_dir / "report.md", facts["total_minutes"])


if __name__ == "__main__":
    main()
