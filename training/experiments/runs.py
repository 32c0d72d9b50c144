"""What the main job and `lst experiment` share: their arguments, the held-out split of the built-in Bible, its
spoken corpus and tokenizer, the data of each protocol, the pretraining command of a run, and a run's
evaluation (held-out loss per modality and the spoken topic cloze in four directions)."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
from transformers import AutoModelForCausalLM

from lst_speech.evaluation.multiple_choice import multiple_choice_accuracy
from lst_speech.evaluation.multiple_choice_data import TextItem, topic_story_cloze
from lst_speech.tokenization import SpeechUnitTextTokenizer
from lst_speech.tokenization.corpora.sample_text import kjv_records
from lst_speech.tokenization.corpora.spoken_corpus import spoken_corpus_from_texts
from lst_speech.training.data.mixing import realised_ratios
from lst_speech.training.data.recipes import RECIPES, build_pretraining_data, pack_with_recipe
from lst_speech.training.experiments.main_job_report import PROTOCOLS

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


def pretrain_command(run_dir: Path, train_data: Path, output_dir: Path, model_type: str, arguments: MainJobArguments,
                     seed: int, patching: dict | None = None) -> list[str]:
    """The `lst_speech.training.pretrain` command of one run: `arguments.max_steps` steps on `train_data`, evaluated on
    `output_dir/data/held_out`; `patching` holds LST's patching flags."""
    steps = arguments.max_steps
    command = [
        sys.executable, "-m", "lst_speech.training.pretrain", "--tokenizer", str(output_dir / "tokenizer"),
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


def evaluate(run_dir: Path, items: dict, batch_size: int = 16, name: str = "") -> dict:
    model = AutoModelForCausalLM.from_pretrained(run_dir / "final").eval()
    tokenizer = SpeechUnitTextTokenizer.from_pretrained(run_dir / "final")
    results = {"held_out_loss": json.loads((run_dir / "eval_results.json").read_text()),
               "parameters": sum(p.numel() for p in model.parameters())}
    with torch.no_grad():
        results["topic_cloze"] = {d: multiple_choice_accuracy(model, tokenizer, items[d], batch_size,
                                                              context_gain=True, progress=f"{name} {d}")
                                  for d in items}
    # Each item's credit under context gain is kept (for paired comparisons between models on the same items);
    # the choices and the other normalisations' credits are not reported.
    for scores in results["topic_cloze"].values():
        for key in [k for k in scores if k.startswith(("choices_", "correct_")) and k != "correct_context_gain"]:
            scores.pop(key)
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    results["log"] = log
    return results
