"""Is a vocoder's speech intelligible? Held-out units are vocoded and transcribed by an independent recogniser,
and the word and character error rates are set beside the same recogniser's on the original audio.

Error rates are corpus-level, with 95% bootstrap intervals over utterances (`lst_speech.evaluation.transcription.error_rates`), paired
so that the difference vocoded - original has its own interval.
"""

from __future__ import annotations

import logging

import numpy as np
from tqdm.auto import tqdm

from lst_speech.evaluation.transcription.error_rates import error_counts, paired_differences, summarise
from lst_speech.tokenization.unit_pieces import deduplicate_units

logger = logging.getLogger(__name__)


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
    result.update(paired_differences(counts["vocoded"], counts["original"]))
    result["examples"] = [{"reference": r, "original": o, "vocoded": v}
                          for r, o, v in list(zip(references, original, vocoded))[:5]]
    return result
