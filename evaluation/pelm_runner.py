"""PELM runner (SUTLM): sample continuations of prompts and score them under an external LM.

Text continuations are scored as generated. Speech continuations need a transcriber (any callable from a
unit array to text: `lst_speech.evaluation.transcription.transcribers.UnitTranscriber`, a unit vocoder + a recogniser); without one they
cannot be scored, and the runner says so. `spoken_prompts` cuts a spoken corpus's utterances in half for any of
the four directions. Defaults follow slamkit's GenPPL recipe (temperature 0.8, top-k 25), which SUTLM does not
specify.
"""

from __future__ import annotations

import numpy as np

from lst_speech.evaluation.metrics import metric_path
from lst_speech.modeling_lst.modality import generate_in_modality

PELM_METRIC = metric_path("pelm")


def continuation_text(segments, transcriber=None) -> str:
    """A continuation's text: its text segments, and its speech segments through `transcriber`."""
    pieces = []
    for segment in segments:
        if isinstance(segment, str):
            pieces.append(segment)
        elif transcriber is None:
            raise ValueError("A speech continuation needs a transcriber (units -> text) to be scored by PELM.")
        else:
            pieces.append(transcriber(np.asarray(segment)))
    return " ".join(p.strip() for p in pieces if p.strip())


def pelm(model, tokenizer, prompts, prompt_transcripts, references, external_lm: str, output_modality: str = "text",
         transcriber=None, temperature: float = 0.8, top_k: int = 25, max_new_tokens: int = 50, seed: int = 0,
         batch_size: int = 16, reduction: str = "corpus") -> dict:
    """Sample one continuation per prompt (lists of segments), `batch_size` prompts per `generate`, and score
    them with the `pelm` module (`reduction`: "corpus", token-weighted, or "utterance", slamkit's GenPPL)."""
    import evaluate  # imported here: it takes seconds, and only evaluation needs it
    import torch

    if not len(prompts) == len(prompt_transcripts) == len(references):
        raise ValueError("prompts, prompt_transcripts and references must have the same length.")
    if output_modality == "speech" and transcriber is None:
        raise ValueError("Speech continuations need a transcriber (units -> text) to be scored by PELM.")
    torch.manual_seed(seed)
    continuations = []
    for start in range(0, len(prompts), batch_size):
        continuations += generate_in_modality(model, tokenizer, prompts[start: start + batch_size], output_modality,
                                              do_sample=True, temperature=temperature, top_k=top_k,
                                              max_new_tokens=max_new_tokens)
    predictions = [continuation_text(c, transcriber) for c in continuations]
    result = evaluate.load(PELM_METRIC).compute(
        predictions=predictions, references=list(references), contexts=list(prompt_transcripts), model_id=external_lm,
        reduction=reduction,
    )
    return {**result, "continuations": predictions}


DIRECTIONS = ("T->T", "S->S", "S->T", "T->S")


def spoken_prompts(rows, direction: str, prompt_fraction: float = 0.5) -> tuple[list, list[str], list[str]]:
    """(prompts, prompt transcripts, references) from spoken-corpus rows (`words`, `units`, `word_spans`): each
    utterance's first words (at least one, leaving at least one) as text or as their units, the rest as the
    reference continuation. The direction's second letter is the continuation's modality (`pelm`'s
    `output_modality`)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"Unknown direction {direction!r}; choose from {DIRECTIONS}.")
    prompts, transcripts, references = [], [], []
    for row in rows:
        words = list(row["words"])
        if len(words) < 2:
            raise ValueError(f"Utterance {row.get('id', '?')} has {len(words)} word(s): a prompt and a continuation "
                             "need one each; filter the corpus to utterances of two words or more.")
        cut = min(max(1, round(prompt_fraction * len(words))), len(words) - 1)
        if direction[0] == "S":
            end = int(row["word_spans"][cut - 1][1])
            prompts.append([np.asarray(row["units"][:end])])
        else:
            prompts.append([" ".join(words[:cut])])
        transcripts.append(" ".join(words[:cut]))
        references.append(" ".join(words[cut:]))
    return prompts, transcripts, references
