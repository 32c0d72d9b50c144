"""Is a vocoder's speech intelligible? Held-out units are vocoded and transcribed by an independent recogniser,
and the word and character error rates are set beside the same recogniser's on the original audio.

Error rates are corpus-level (jiwer: edits over reference words), with 95% bootstrap intervals over utterances
(paired, so the difference vocoded - original has its own interval). References and transcripts are compared
as `normalise_words` gives them (lower case, no surrounding punctuation).
"""

from __future__ import annotations

import logging

import numpy as np
from tqdm.auto import tqdm

from tokenization.alignment import normalise_words
from tokenization.unit_pieces import deduplicate_units

from .uncertainty import bootstrap_interval

logger = logging.getLogger(__name__)


def _ratio(edits, lengths):
    return float(np.sum(edits) / np.sum(lengths))


def _difference(edits_a, edits_b, lengths_a, lengths_b):
    return _ratio(edits_a, lengths_a) - _ratio(edits_b, lengths_b)


def error_counts(references: list[str], hypotheses: list[str]) -> dict:
    """Per utterance: word edits and reference words, character edits and reference characters."""
    import jiwer

    words = {"edits": [], "length": []}
    characters = {"edits": [], "length": []}
    for reference, hypothesis in zip(references, hypotheses):
        reference, hypothesis = " ".join(normalise_words(reference)), " ".join(normalise_words(hypothesis))
        if not reference:
            raise ValueError("A reference transcript has no words to score against; drop it or give its text.")
        w = jiwer.process_words(reference, hypothesis)
        c = jiwer.process_characters(reference, hypothesis)
        words["edits"].append(w.substitutions + w.deletions + w.insertions)
        words["length"].append(len(reference.split()))
        characters["edits"].append(c.substitutions + c.deletions + c.insertions)
        characters["length"].append(len(reference))
    return {"words": words, "characters": characters}


def summarise(counts: dict) -> dict:
    summary = {}
    for unit, name in (("words", "wer"), ("characters", "cer")):
        edits, lengths = np.asarray(counts[unit]["edits"]), np.asarray(counts[unit]["length"])
        summary[name] = _ratio(edits, lengths)
        summary[f"{name}_interval"] = bootstrap_interval(_ratio, edits, lengths)
    return summary


def intelligibility(vocoder, rows, transcriber, progress: bool = True) -> dict:
    """`rows`: held-out utterances with `audio` (at the vocoder's rate), `units` (frames) and `text`."""
    rate = vocoder.config.sampling_rate
    references, original, vocoded, empty = [], [], [], 0
    for row in tqdm(rows, desc="transcribing", unit="utt", disable=not progress):
        units = np.asarray(row["units"])
        durations = None
        if vocoder.config.deduplicated:
            units, durations = deduplicate_units(units)
        references.append(row["text"])
        original.append(transcriber(np.asarray(row["audio"], dtype=np.float32), rate))
        vocoded.append(transcriber(vocoder.synthesize(units, durations), rate))
        empty += not vocoded[-1]
    if empty:
        logger.warning("%d of %d vocoded utterances were transcribed as nothing (scored as all words deleted)",
                       empty, len(vocoded))
    counts = {"original": error_counts(references, original), "vocoded": error_counts(references, vocoded)}
    result = {"utterances": len(references), "empty_vocoded_transcripts": empty,
              "original": summarise(counts["original"]), "vocoded": summarise(counts["vocoded"])}
    for unit, name in (("words", "wer"), ("characters", "cer")):
        a, b = counts["vocoded"][unit], counts["original"][unit]
        result[f"{name}_difference"] = result["vocoded"][name] - result["original"][name]
        result[f"{name}_difference_interval"] = bootstrap_interval(
            _difference, np.asarray(a["edits"]), np.asarray(b["edits"]), np.asarray(a["length"]),
            np.asarray(b["length"]))
    result["examples"] = [{"reference": r, "original": o, "vocoded": v}
                          for r, o, v in list(zip(references, original, vocoded))[:5]]
    return result
