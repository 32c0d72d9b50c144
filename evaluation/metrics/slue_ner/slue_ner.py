"""SLUE named entity recognition (SLUE-VoxPopuli): F1 and label-F1 over (tag, phrase) pairs per sentence, read
and scored exactly as the slue-toolkit scores end-to-end NER output.

The reference is asappresearch/slue-toolkit (commit ed23039): `slue_toolkit/eval/eval_w2v_ner.py` (`get_gt_pred`
reads a line, `make_distinct` keeps repeated pairs, `eval_ner` reports F1 and label-F1),
`slue_toolkit/eval/eval_utils_ner.py` (`get_ner_scores`, `get_ner_stats`, `get_metrics`: micro-averaged over
tags and sentences, 0 where a ratio is undefined), `slue_toolkit/generic_utils.py` (`raw_entity_to_spl_char`,
`raw_to_combined_tag_map`) and `slue_toolkit/prepare/data_utils.py` (`prep_e2e_ner_files`, the format's writer).

A transcript marks an entity as "<tag character> words ]". Only the 18 raw tag characters are read (`get_gt_pred`
reads no other set). Words are separated by whitespace (the toolkit splits at single spaces after one pass that
replaces double spaces; on its single-spaced decoder output the two agree). The rules, for predictions and
references alike:

| case                                 | example (raw characters)       | entities read                       |
|--------------------------------------|--------------------------------|-------------------------------------|
| well-formed                          | "the ` eu ] met on @ monday ]" | (ORG, eu), (DATE, monday)           |
| entity open when the next tag starts | "} anna ` eu ] met"            | (ORG, eu): the open one is dropped  |
| nested (the rule above, then a "]")  | "` the } anna ] board ]"       | (PERSON, anna): the last "]" stray  |
| never closed                         | "met } anna"                   | none                                |
| empty                                | "} ] met"                      | none                                |
| "]" with no entity open              | "met ] } anna ]"               | (PERSON, anna)                      |
| unknown tag character                | "+ anna ]"                     | none: "+" is a word, "]" is stray   |
| unknown character inside an entity   | "} + anna ]"                   | (PERSON, + anna)                    |
| mark joined to a word                | "}anna ]"                      | none: "}anna" is a word             |
| words outside entities               | "met anna"                     | none                                |

Label sets ("raw" or "combined", the toolkit's `eval_label`): both read the raw characters above. "raw" scores the
18 OntoNotes tags; "combined" maps each tag read through `raw_to_combined_tag_map` (DATE, TIME -> WHEN; CARDINAL,
ORDINAL, QUANTITY, MONEY, PERCENT -> QUANT; GPE, LOC -> PLACE; NORP, ORG, LAW, PERSON kept) and drops FAC,
EVENT, WORK_OF_ART, PRODUCT and LANGUAGE entities after reading, so "$ louvre ]" is a FAC entity (dropped in
"combined"), never a PERSON. The toolkit also defines combined characters (`combined_entity_to_spl_char`, "$" =
PERSON) for its training files, but its scorer never reads them; references that look written in them are
refused (below), since reading them as raw tags would mis-score without a sign.

Scoring: each sentence's pairs form a multiset (a pair repeated in both counts as often as in both); precision,
recall and F1 are micro-averaged over all sentences and tags (the toolkit's `overall_micro`, which `eval_ner`
prints). Label-F1 does the same with the phrase left out (`score_type="label"`).

Beyond the toolkit, which scores whatever it reads: a reference with an entity cut by the next tag, never
closed or empty, a stray "]", or a mark joined to a word is an error (the toolkit's writer makes none of these,
and scoring one would drop a reference entity silently); so is a reference set with at least 20 entities none of
which uses one of the 11 raw characters that the combined set lacks (text in the combined characters: ORG,
NORP and PERSON, among SLUE-VoxPopuli's commonest tags, all use such characters). Predictions are never refused:
how often each rule fired in them is reported, since early in fine-tuning most outputs are malformed.
"""

from collections import Counter

import datasets
import evaluate

END_OF_ENTITY = "]"
RAW_TAG_CHARACTERS = {  # generic_utils.raw_entity_to_spl_char
    "CARDINAL": "!", "DATE": "@", "EVENT": "#", "FAC": "$", "GPE": "%", "LANGUAGE": "^", "LAW": "&", "LOC": "*",
    "MONEY": "(", "NORP": ")", "ORDINAL": "~", "ORG": "`", "PERCENT": "{", "PERSON": "}", "PRODUCT": "[",
    "QUANTITY": "<", "TIME": ">", "WORK_OF_ART": "?",
}
DISCARD = "DISCARD"
RAW_TO_COMBINED = {  # generic_utils.raw_to_combined_tag_map
    "DATE": "WHEN", "TIME": "WHEN", "CARDINAL": "QUANT", "ORDINAL": "QUANT", "QUANTITY": "QUANT", "MONEY": "QUANT",
    "PERCENT": "QUANT", "GPE": "PLACE", "LOC": "PLACE", "NORP": "NORP", "ORG": "ORG", "LAW": "LAW", "PERSON": "PERSON",
    "FAC": DISCARD, "EVENT": DISCARD, "WORK_OF_ART": DISCARD, "PRODUCT": DISCARD, "LANGUAGE": DISCARD,
}
# generic_utils.combined_entity_to_spl_char: only to recognise text written in it (see the module docstring).
COMBINED_TAG_CHARACTERS = {"LAW": "!", "NORP": "@", "ORG": "#", "PERSON": "$", "PLACE": "%", "QUANT": "^", "WHEN": "&"}
LABEL_SETS = ("raw", "combined")
# How often each rule dropped or ignored something, as reported for predictions.
MALFORMATIONS = ("num_cut_by_next_tag", "num_never_closed", "num_empty", "num_stray_end")
# Raw tags whose characters are also combined characters: all a reference in combined characters reads as.
_COMBINED_CHARACTERS_READ_AS_RAW = {tag for tag, c in RAW_TAG_CHARACTERS.items() if c in COMBINED_TAG_CHARACTERS.values()}
_MIN_ENTITIES_FOR_CHARACTER_CHECK = 20
_TAG_OF_CHARACTER = {character: tag for tag, character in RAW_TAG_CHARACTERS.items()}
_MARKS = set(RAW_TAG_CHARACTERS.values()) | {END_OF_ENTITY}

_KWARGS_DESCRIPTION = """
Args:
    predictions: tagged transcripts predicted by a model (raw tag characters).
    references: reference tagged transcripts (see `tagged_text` to make them from SLUE annotations).
Returns:
    f1, precision, recall: over (tag, phrase) pairs.
    label_f1, label_precision, label_recall: over tags only.
    num_sentences, num_reference_entities, num_predicted_entities.
    num_cut_by_next_tag, num_never_closed, num_empty, num_stray_end: how often each rule fired in predictions.
    num_glued_tag_tokens: predicted tokens with a tag mark joined to a word ("@european"), read as words.
    A reference that is not well-formed, or no sentences at all, is an error.
Example:
    >>> from lst_speech.evaluation.metrics import metric_path
    >>> ner = evaluate.load(metric_path("slue_ner"))          # combined labels; config_name="raw" for 18
    >>> ner.compute(predictions=["the ` eu ] met"], references=["the ` eu ] met on @ monday ]"])["f1"]
    0.6666666666666666
"""

_CITATION = """
@inproceedings{shon2022slue,
  title={SLUE: New Benchmark Tasks for Spoken Language Understanding Evaluation on Natural Speech},
  author={Shon, Suwon and Pasad, Ankita and Wu, Felix and Brusco, Pablo and Artzi, Yoav and Livescu, Karen and Han, Kyu J},
  booktitle={ICASSP},
  year={2022}
}
"""


def read_entities(text: str) -> tuple[list[tuple[str, str]], Counter]:
    """`get_gt_pred`'s reading of one transcript: its (raw tag, phrase) pairs, and how often each rule of
    MALFORMATIONS dropped or ignored something."""
    entities, malformed, tag, words = [], Counter(), None, []
    for token in text.split():
        if token in _TAG_OF_CHARACTER:
            if tag is not None:
                malformed["num_cut_by_next_tag"] += 1
            tag, words = _TAG_OF_CHARACTER[token], []
        elif token == END_OF_ENTITY:
            if tag is None:
                malformed["num_stray_end"] += 1
            elif words:
                entities.append((tag, " ".join(words)))
            else:
                malformed["num_empty"] += 1
            tag, words = None, []
        elif tag is not None:
            words.append(token)
    if tag is not None:
        malformed["num_never_closed"] += 1
    return entities, malformed


def _check_label_set(label_set: str) -> None:
    if label_set not in LABEL_SETS:
        raise ValueError(f"The SLUE NER label set must be one of {LABEL_SETS}, got {label_set!r}.")


def labelled(entities: list[tuple[str, str]], label_set: str) -> list[tuple[str, str]]:
    """(raw tag, phrase) pairs in `label_set`: as they are, or mapped to combined labels (discarded ones dropped)."""
    _check_label_set(label_set)
    if label_set == "raw":
        return list(entities)
    return [(RAW_TO_COMBINED[tag], phrase) for tag, phrase in entities if RAW_TO_COMBINED[tag] != DISCARD]


def parse_tagged_text(text: str, label_set: str = "combined") -> list[tuple[str, str]]:
    """The (label, phrase) pairs of a transcript in SLUE's end-to-end tagged format, by the toolkit's rules."""
    return labelled(read_entities(text)[0], label_set)


def glued_tag_tokens(text: str) -> list[str]:
    """Tokens that hold a tag character or "]" joined to a word ("@european", "parliament]"): the format needs
    them apart, and the toolkit (like `read_entities`) reads such a token as a plain word."""
    return [token for token in text.split() if len(token) > 1 and (token[0] in _MARKS or token[-1] in _MARKS)]


def tagged_text(text: str, entities, label_set: str = "combined") -> str:
    """A transcript in the end-to-end format, from SLUE's `normalized_ner` spans `(raw tag, start, length)`, written
    with the raw tag characters as the toolkit's `prep_e2e_ner_files` writes its raw training files. With the
    combined label set, the entities it discards (FAC, EVENT, WORK_OF_ART, PRODUCT, LANGUAGE) stay untagged words.
    """
    _check_label_set(label_set)
    marks = [word for word in text.split() if word in _MARKS]
    if marks:
        raise ValueError(f"The transcript {text!r} has the words {marks}, which the format reads as tag marks.")
    pieces, position = [], 0
    for raw_tag, start, length in sorted(entities, key=lambda entity: entity[1]):
        if raw_tag not in RAW_TAG_CHARACTERS:
            raise ValueError(f"Unknown SLUE NER tag {raw_tag!r}; expected one of {sorted(RAW_TAG_CHARACTERS)}.")
        if start < position or start + length > len(text):
            raise ValueError(f"Entity {(raw_tag, start, length)} overlaps another or lies outside the text.")
        if label_set == "combined" and RAW_TO_COMBINED[raw_tag] == DISCARD:
            continue
        pieces += [text[position:start], f" {RAW_TAG_CHARACTERS[raw_tag]} {text[start:start + length]} {END_OF_ENTITY} "]
        position = start + length
    pieces.append(text[position:])
    return " ".join("".join(pieces).split())


def check_references(references: list[str]) -> None:
    """Refuse references that the toolkit's writer could not have made (see the module docstring)."""
    tags = []
    for index, text in enumerate(references):
        glued = glued_tag_tokens(text)
        if glued:
            raise ValueError(f"Reference {index} has tag marks joined to words ({glued[:3]}) in {text!r}: write "
                             "each tag character and ']' as its own word (tagged_text makes references so).")
        entities, malformed = read_entities(text)
        if malformed:
            raise ValueError(f"Reference {index} is not well-formed ({dict(malformed)}) in {text!r}: every entity "
                             "must be '<tag> words ]', closed before the next one starts.")
        tags += [tag for tag, _ in entities]
    if len(tags) >= _MIN_ENTITIES_FOR_CHARACTER_CHECK and set(tags) <= _COMBINED_CHARACTERS_READ_AS_RAW:
        raise ValueError(f"The references' {len(tags)} entities use only the characters of the combined tag set "
                         f"({''.join(COMBINED_TAG_CHARACTERS.values())}): they look written with "
                         "combined_entity_to_spl_char ('$' = PERSON), which the SLUE scorer never reads. Write them "
                         "with the raw characters (tagged_text) and pick the combined labels with config_name.")


def _micro_scores(predicted: list[Counter], gold: list[Counter]) -> tuple[float, float, float]:
    correct = sum(sum((p & g).values()) for p, g in zip(predicted, gold))
    num_predicted, num_gold = sum(sum(p.values()) for p in predicted), sum(sum(g.values()) for g in gold)
    precision = correct / num_predicted if num_predicted else 0.0
    recall = correct / num_gold if num_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1, precision, recall


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS_DESCRIPTION)
class SlueNer(evaluate.Metric):
    def _info(self):
        if self.config_name not in ("default", *LABEL_SETS):
            raise ValueError(f"config_name must be 'combined' or 'raw', got {self.config_name!r}.")
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        if not references:
            raise ValueError("slue_ner got no sentences: pass at least one prediction and reference (an F1 over "
                             "nothing is undefined, not 0).")
        check_references(references)
        label_set = "raw" if self.config_name == "raw" else "combined"
        readings = [read_entities(text) for text in predictions]
        predicted = [labelled(entities, label_set) for entities, _ in readings]
        gold = [parse_tagged_text(text, label_set) for text in references]
        # Counter intersection is `make_distinct` + `get_ner_stats`: a pair counts as often as it is in both.
        f1, precision, recall = _micro_scores([Counter(p) for p in predicted], [Counter(g) for g in gold])
        label_f1, label_precision, label_recall = _micro_scores(
            [Counter(tag for tag, _ in p) for p in predicted], [Counter(tag for tag, _ in g) for g in gold]
        )
        malformed = sum((counts for _, counts in readings), Counter())
        return {
            "f1": f1, "precision": precision, "recall": recall,
            "label_f1": label_f1, "label_precision": label_precision, "label_recall": label_recall,
            "num_sentences": len(references),
            "num_reference_entities": sum(map(len, gold)),
            "num_predicted_entities": sum(map(len, predicted)),
            **{kind: malformed[kind] for kind in MALFORMATIONS},
            "num_glued_tag_tokens": sum(len(glued_tag_tokens(text)) for text in predictions),
        }
