"""Multiple-choice sets as text items, and their spoken versions in any direction.

Loaders read the sets' own published formats from local files (nothing is downloaded):
- StoryCloze (ROCStories cloze CSV: InputSentence1-4, RandomFifthSentenceQuiz1/2, AnswerRightEnding);
- TopicStoryCloze (TWIST): StoryCloze with the wrong ending replaced by another story's right ending;
- HellaSwag (original jsonl: ctx_a, ctx_b, endings, label), with the usual clean-up of WikiHow artefacts;
- minimal pairs in the sWUGGY / sBLIMP style (jsonl with "good" and "bad"): no context, two "endings";
- our own items (jsonl with "context", "endings", "label" and an optional "id"): any set already in that shape,
  such as the main job's held-out topic cloze, which it writes with `write_items` for evaluation during training.
`spoken_items` makes the S->S, T->T, S->T and T->S versions: prompt and endings are synthesised separately
(as LST did with its TTS), so no ending's audio depends on the prompt.
"""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from lst_speech.evaluation.multiple_choice import MultipleChoiceItem

DIRECTIONS = ("S->S", "T->T", "S->T", "T->S")


@dataclass
class TextItem:
    """A text multiple-choice item: context (may be empty), endings, the right ending's index."""

    id: str
    context: str
    endings: list[str]
    label: int


def load_story_cloze(path: str | Path) -> list[TextItem]:
    items = []
    with open(path, newline="", encoding="utf-8") as handle:
        for line_number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                context = " ".join(row[f"InputSentence{i}"].strip() for i in range(1, 5))
                endings = [row["RandomFifthSentenceQuiz1"].strip(), row["RandomFifthSentenceQuiz2"].strip()]
                answer = row["AnswerRightEnding"]
            except KeyError as missing:
                raise ValueError(f"{path}: not a StoryCloze CSV (no column {missing}).") from None
            except AttributeError:  # a short row: csv fills missing cells with None
                raise ValueError(f"{path}:{line_number}: the row has fewer cells than the header.") from None
            if answer not in ("1", "2"):
                raise ValueError(f"{path}:{line_number}: AnswerRightEnding must be 1 or 2, got {answer!r}.")
            items.append(TextItem(row.get("InputStoryid", str(len(items))), context, endings, int(answer) - 1))
    if not items:
        raise ValueError(f"{path}: the StoryCloze CSV has a header but no stories.")
    return items


def topic_story_cloze(items: list[TextItem], seed: int = 0) -> list[TextItem]:
    """TWIST's TopicStoryCloze: the wrong ending is the right ending of another, random story."""
    if len(items) < 2:
        raise ValueError("TopicStoryCloze needs at least two stories.")
    rng = random.Random(seed)
    topical = []
    for index, item in enumerate(items):
        other = rng.choice([j for j in range(len(items)) if j != index])
        right, foreign = item.endings[item.label], items[other].endings[items[other].label]
        endings = [right, foreign] if rng.random() < 0.5 else [foreign, right]
        topical.append(TextItem(item.id, item.context, endings, endings.index(right)))
    return topical


def _clean_hellaswag(text: str) -> str:
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return " ".join(text.split())


def _json_lines(path: str | Path):
    """(line number, object) of each non-blank line of a JSON lines file."""
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if line.strip():
                yield line_number, json.loads(line)


def load_hellaswag(path: str | Path) -> list[TextItem]:
    items = []
    for line_number, row in _json_lines(path):
        try:
            context = _clean_hellaswag(f"{row['ctx_a']} {row['ctx_b'].capitalize()}")
            endings = [_clean_hellaswag(e) for e in row["endings"]]
            label = int(row["label"])
        except KeyError as missing:
            raise ValueError(f"{path}:{line_number}: not a HellaSwag row (no field {missing}).") from None
        items.append(TextItem(str(row.get("ind", line_number)), context, endings, label))
    return items


def load_minimal_pairs(path: str | Path) -> list[TextItem]:
    """sWUGGY / sBLIMP-style pairs: the "good" one should be more likely; the right ending is index 0."""
    items = []
    for line_number, row in _json_lines(path):
        if "good" not in row or "bad" not in row:
            raise ValueError(f"{path}:{line_number}: a minimal pair needs 'good' and 'bad'.")
        items.append(TextItem(str(row.get("id", line_number)), "", [row["good"], row["bad"]], 0))
    return items


def load_items(path: str | Path) -> list[TextItem]:
    """Items as `write_items` writes them: one JSON object a line with context, endings and label."""
    items = []
    for line_number, row in _json_lines(path):
        missing = [name for name in ("context", "endings", "label") if name not in row]
        if missing:
            raise ValueError(f"{path}:{line_number}: an item needs {', '.join(repr(m) for m in missing)}.")
        label, endings = row["label"], row["endings"]
        if not isinstance(label, int) or not 0 <= label < len(endings):
            raise ValueError(f"{path}:{line_number}: 'label' must index one of the {len(endings)} endings, got "
                             f"{label!r}.")
        items.append(TextItem(str(row.get("id", line_number)), row["context"], list(endings), label))
    if not items:
        raise ValueError(f"{path}: no items (one JSON object a line with context, endings and label).")
    return items


def write_items(items: list[TextItem], path: str | Path) -> None:
    """The `items` format: what `load_items` reads back unchanged."""
    Path(path).write_text("".join(json.dumps({"id": i.id, "context": i.context, "endings": i.endings,
                                              "label": i.label}) + "\n" for i in items), encoding="utf-8")


FORMATS = ("storycloze", "topic-storycloze", "hellaswag", "pairs", "items")


def load_text_items(path: str | Path, format: str) -> list[TextItem]:
    """A set in one of `FORMATS`: `lst eval mc --format` and pretraining's `--eval_multiple_choice` read the same."""
    loaders = {"storycloze": load_story_cloze, "topic-storycloze": load_story_cloze, "hellaswag": load_hellaswag,
               "pairs": load_minimal_pairs, "items": load_items}
    if format not in loaders:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}.")
    items = loaders[format](path)
    return topic_story_cloze(items) if format == "topic-storycloze" else items


def text_items(items: list[TextItem]) -> list[MultipleChoiceItem]:
    """The T->T version."""
    return [MultipleChoiceItem([i.context] if i.context else [], [[e] for e in i.endings], i.label, i.id)
            for i in items]


def spoken_items(items: list[TextItem], direction: str, synthesizer, extractor,
                 cache: dict | None = None) -> list[MultipleChoiceItem]:
    """The items in `direction` (S = speech units, T = text), synthesising prompts and endings separately.

    Pass the same `cache` dict to several calls (e.g. the three spoken directions) to speak each text once.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}.")
    cache = {} if cache is None else cache

    def units(text: str):
        if text not in cache:
            speech = synthesizer.synthesize(text)
            cache[text] = extractor(speech.waveform, speech.sampling_rate)
        return cache[text]

    spoken = []
    for item in items:
        context = [] if not item.context else [units(item.context) if direction[0] == "S" else item.context]
        endings = [[units(e) if direction[-1] == "S" else e] for e in item.endings]
        spoken.append(MultipleChoiceItem(context, endings, item.label, item.id))
    return spoken
