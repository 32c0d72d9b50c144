"""SLUE named entity recognition (SLUE-VoxPopuli): F1 and label-F1 over (tag, phrase) pairs per sentence."""

from collections import Counter

import datasets
import evaluate

# SLUE's end-to-end format marks an entity as "<tag character> words ]" inside the transcript.
END_OF_ENTITY = "]"
RAW_TAG_CHARACTERS = {
    "CARDINAL": "!", "DATE": "@", "EVENT": "#", "FAC": "$", "GPE": "%", "LANGUAGE": "^", "LAW": "&", "LOC": "*",
    "MONEY": "(", "NORP": ")", "ORDINAL": "~", "ORG": "`", "PERCENT": "{", "PERSON": "}", "PRODUCT": "[",
    "QUANTITY": "<", "TIME": ">", "WORK_OF_ART": "?",
}
COMBINED_TAG_CHARACTERS = {"LAW": "!", "NORP": "@", "ORG": "#", "PERSON": "$", "PLACE": "%", "QUANT": "^", "WHEN": "&"}
RAW_TO_COMBINED = {
    "DATE": "WHEN", "TIME": "WHEN", "CARDINAL": "QUANT", "ORDINAL": "QUANT", "QUANTITY": "QUANT", "MONEY": "QUANT",
    "PERCENT": "QUANT", "GPE": "PLACE", "LOC": "PLACE", "NORP": "NORP", "ORG": "ORG", "LAW": "LAW", "PERSON": "PERSON",
    # FAC, EVENT, WORK_OF_ART, PRODUCT and LANGUAGE are discarded in the combined tag set.
}
TAG_SETS = {"combined": COMBINED_TAG_CHARACTERS, "raw": RAW_TAG_CHARACTERS}

_DESCRIPTION = """
SLUE-NER scores entities as unordered (tag, phrase) pairs per sentence, as the SLUE toolkit does: micro F1
over all sentences, where a pair counts as correct as often as it occurs in both the prediction and the
reference; label-F1 does the same with tags alone. Inputs are transcripts in SLUE's end-to-end tagged format,
"the @ european parliament ] met on & tuesday ]" (combined tags) or with the 18 raw OntoNotes tags
(config "raw"). A new tag character closes an open entity, an unclosed entity ends with the sentence, and a
stray "]" is ignored, so model outputs always parse.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: tagged transcripts predicted by a model.
    references: reference tagged transcripts (see `tagged_text` to make them from SLUE annotations).
Returns:
    f1, precision, recall: over (tag, phrase) pairs.
    label_f1, label_precision, label_recall: over tags only.
    num_sentences, num_reference_entities, num_predicted_entities.
    num_glued_tag_tokens: predicted tokens with a tag mark joined to a word ("@european"), read as words.
    A reference with such a token, or no sentences at all, is an error.
Example:
    >>> from lst_speech.evaluation.metrics import metric_path
    >>> ner = evaluate.load(metric_path("slue_ner"))          # combined tags; config_name="raw" for 18
    >>> ner.compute(predictions=["the # eu ] met"], references=["the # eu ] met on & monday ]"])["f1"]
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


def parse_tagged_text(text: str, tag_set: str = "combined") -> list[tuple[str, str]]:
    """The (tag, phrase) pairs of a transcript in SLUE's end-to-end tagged format."""
    character_to_tag = {character: tag for tag, character in TAG_SETS[tag_set].items()}
    entities, tag, words = [], None, []
    for token in text.split():
        if token in character_to_tag:
            if tag is not None:
                entities.append((tag, " ".join(words)))
            tag, words = character_to_tag[token], []
        elif token == END_OF_ENTITY:
            if tag is not None:
                entities.append((tag, " ".join(words)))
            tag = None
        elif tag is not None:
            words.append(token)
    if tag is not None:
        entities.append((tag, " ".join(words)))
    return entities


def glued_tag_tokens(text: str, tag_set: str = "combined") -> list[str]:
    """Tokens that hold a tag character or "]" joined to a word ("@european", "parliament]"): the format needs
    them apart, and `parse_tagged_text` reads such a token as a plain word."""
    marks = set(TAG_SETS[tag_set].values()) | {END_OF_ENTITY}
    return [token for token in text.split() if len(token) > 1 and (token[0] in marks or token[-1] in marks)]


def tagged_text(text: str, entities, tag_set: str = "combined") -> str:
    """A transcript in the end-to-end format, from SLUE's `normalized_ner` spans `(raw tag, start, length)`.

    With the combined tag set, raw tags are mapped (and FAC, EVENT, WORK_OF_ART, PRODUCT, LANGUAGE dropped).
    """
    pieces, position = [], 0
    for raw_tag, start, length in sorted(entities, key=lambda entity: entity[1]):
        tag = raw_tag if tag_set == "raw" else RAW_TO_COMBINED.get(raw_tag)
        if raw_tag not in RAW_TAG_CHARACTERS:
            raise ValueError(f"Unknown SLUE NER tag {raw_tag!r}; expected one of {sorted(RAW_TAG_CHARACTERS)}.")
        if start < position or start + length > len(text):
            raise ValueError(f"Entity {(raw_tag, start, length)} overlaps another or lies outside the text.")
        if tag is None:
            continue
        pieces += [text[position:start], f" {TAG_SETS[tag_set][tag]} {text[start:start + length]} {END_OF_ENTITY} "]
        position = start + length
    pieces.append(text[position:])
    return " ".join("".join(pieces).split())


def raw_to_combined(text: str) -> str:
    """A transcript tagged with raw tags, retagged with the combined set (FAC, EVENT, WORK_OF_ART, PRODUCT and
    LANGUAGE entities become untagged words), so one model's raw output is scored on both sets."""
    raw_tags = {character: tag for tag, character in RAW_TAG_CHARACTERS.items()}
    tokens, open_tag_dropped = [], False
    for token in text.split():
        if token in raw_tags:
            combined = RAW_TO_COMBINED.get(raw_tags[token])
            open_tag_dropped = combined is None
            if combined is not None:
                tokens.append(COMBINED_TAG_CHARACTERS[combined])
            elif _is_open(tokens):
                tokens.append(END_OF_ENTITY)  # a dropped tag still closes the entity before it
        elif token == END_OF_ENTITY and open_tag_dropped:
            open_tag_dropped = False
        else:
            tokens.append(token)
    return " ".join(tokens)


def _is_open(tokens: list[str]) -> bool:
    """Whether the last combined tag in `tokens` has not been closed yet."""
    for token in reversed(tokens):
        if token == END_OF_ENTITY:
            return False
        if token in COMBINED_TAG_CHARACTERS.values():
            return True
    return False


def _micro_scores(predicted: list[Counter], gold: list[Counter]) -> tuple[float, float, float]:
    correct = sum(sum((p & g).values()) for p, g in zip(predicted, gold))
    num_predicted, num_gold = sum(sum(p.values()) for p in predicted), sum(sum(g.values()) for g in gold)
    precision = correct / num_predicted if num_predicted else 0.0
    recall = correct / num_gold if num_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1, precision, recall


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SlueNer(evaluate.Metric):
    def _info(self):
        if self.config_name not in ("default", *TAG_SETS):
            raise ValueError(f"config_name must be 'combined' or 'raw', got {self.config_name!r}.")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        if not references:
            raise ValueError("slue_ner got no sentences: pass at least one prediction and reference (an F1 over "
                             "nothing is undefined, not 0).")
        tag_set = "raw" if self.config_name == "raw" else "combined"
        for index, text in enumerate(references):
            glued = glued_tag_tokens(text, tag_set)
            if glued:
                raise ValueError(f"Reference {index} has tag marks joined to words ({glued[:3]}) in {text!r}: write "
                                 "each tag character and ']' as its own word (tagged_text makes references so).")
        # Pair matching with multiplicities (Counter intersection) is SLUE's definition; seqeval scores BIO
        # sequences, which the end-to-end format does not have.
        predicted = [parse_tagged_text(text, tag_set) for text in predictions]
        gold = [parse_tagged_text(text, tag_set) for text in references]
        f1, precision, recall = _micro_scores([Counter(p) for p in predicted], [Counter(g) for g in gold])
        label_f1, label_precision, label_recall = _micro_scores(
            [Counter(tag for tag, _ in p) for p in predicted], [Counter(tag for tag, _ in g) for g in gold]
        )
        return {
            "f1": f1, "precision": precision, "recall": recall,
            "label_f1": label_f1, "label_precision": label_precision, "label_recall": label_recall,
            "num_sentences": len(references),
            "num_reference_entities": sum(map(len, gold)),
            "num_predicted_entities": sum(map(len, predicted)),
            # Predicted tokens with a tag mark joined to a word, read as plain words (a model's formatting slip,
            # counted so that a low F1 from it is visible).
            "num_glued_tag_tokens": sum(len(glued_tag_tokens(text, tag_set)) for text in predictions),
        }
