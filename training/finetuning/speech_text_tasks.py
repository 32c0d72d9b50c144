"""ASR and TTS as fine-tuning tasks by generation, on paired speech and text (lst_speech.training.finetuning.paired_data).

ASR: `<s> <speech> units <text>` -> the transcript, scored by WER and CER (jiwer, corpus-level, with 95%
bootstrap intervals). TTS: `<s> <text> transcript <speech>` -> the units, scored by the unit error rate (edit
distance over reference units, with its interval, and how many outputs equal their reference) and, given a
`UnitTranscriber` (a unit vocoder + a recogniser), by the CER and WER of the vocoded output's transcript
against the text. The reference units are the target as the tokenizer encodes it (deduplicated where the
tokenizer deduplicates), so a perfect model scores 0. Outputs that hit `max_new_tokens` before the end of
sequence are counted (`unfinished`) and scored as they stand; a TTS output with no units has no audio and is
transcribed as nothing (all words deleted), and counted (`empty_outputs`).
"""

from __future__ import annotations

import numpy as np

from lst_speech.evaluation.transcription.error_rates import transcript_error_rates, unit_error_rate
from lst_speech.training.finetuning.generation_task import GenerationTask
from lst_speech.training.finetuning.paired_data import paired_rows


def _percent(scores: dict, name: str) -> str:
    low, high = scores[f"{name}_interval"]
    return f"{100 * scores[name]:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


class AsrTask(GenerationTask):
    name = "asr"
    score_name = "wer"
    greater_is_better = False
    output_modality = "text"

    def rows(self, path: str, unit_extractor=None) -> list[dict]:
        return paired_rows(path, unit_extractor)

    def target_segment(self, row: dict) -> str:
        return row["text"]

    def reference_of(self, row: dict, target_ids: list[int], tokenizer) -> str:
        return row["text"]

    def score(self, predictions: list[str], references: list[str]) -> dict:
        return transcript_error_rates(references, predictions)

    def summary(self, scores: dict) -> str:
        return (f"WER {_percent(scores, 'wer')}, CER {_percent(scores, 'cer')} "
                f"({scores['unfinished']} unfinished)")


class TtsTask(GenerationTask):
    name = "tts"
    score_name = "unit_error_rate"
    greater_is_better = False
    output_modality = "speech"

    def __init__(self, max_new_tokens: int = 1024, transcriber=None):
        super().__init__(max_new_tokens)
        self.transcriber = transcriber

    def rows(self, path: str, unit_extractor=None) -> list[dict]:
        return paired_rows(path, unit_extractor)

    def target_segment(self, row: dict) -> np.ndarray:
        return np.asarray(row["units"], dtype=np.int64)

    def reference_of(self, row: dict, target_ids: list[int], tokenizer) -> dict:
        return {"text": row["text"], "units": self.output_of(tokenizer.decode_segments(target_ids))}

    def score(self, predictions: list[list[int]], references: list[dict]) -> dict:
        result = unit_error_rate([r["units"] for r in references], predictions)
        result["empty_outputs"] = sum(not p for p in predictions)
        if self.transcriber is not None:
            transcripts = [self.transcriber(np.asarray(p)) if p else "" for p in predictions]
            rates = transcript_error_rates([r["text"] for r in references], transcripts)
            result.update({f"vocoded_{name}": value for name, value in rates.items()})
            result["transcripts"] = transcripts[:3]
        return result

    def summary(self, scores: dict) -> str:
        text = f"unit error rate {_percent(scores, 'unit_error_rate')} ({scores['exact_matches']} exact)"
        if "vocoded_cer" in scores:
            text += f", vocoded CER {_percent(scores, 'vocoded_cer')}"
        return text + f" ({scores['unfinished']} unfinished)"
