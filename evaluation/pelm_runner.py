"""PELM runner (SUTLM): sample continuations of prompts and score them under an external LM.

Text continuations are scored as generated. Speech continuations need a transcriber (any callable from a
unit array to text, e.g. a vocoder + ASR); without one they cannot be scored, and the runner says so.
Defaults follow slamkit's GenPPL recipe (temperature 0.8, top-k 25), which SUTLM does not specify.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modeling_lst.modality import generate_in_modality

PELM_METRIC = Path(__file__).resolve().parent / "metrics" / "pelm"


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
         transcriber=None, temperature: float = 0.8, top_k: int = 25, max_new_tokens: int = 50, seed: int = 0) -> dict:
    """Sample one continuation per prompt (lists of segments) and score it with the `pelm` module."""
    import evaluate  # imported here: it takes seconds, and only evaluation needs it
    import torch

    if not len(prompts) == len(prompt_transcripts) == len(references):
        raise ValueError("prompts, prompt_transcripts and references must have the same length.")
    if output_modality == "speech" and transcriber is None:
        raise ValueError("Speech continuations need a transcriber (units -> text) to be scored by PELM.")
    torch.manual_seed(seed)
    continuations = generate_in_modality(model, tokenizer, prompts, output_modality, do_sample=True,
                                         temperature=temperature, top_k=top_k, max_new_tokens=max_new_tokens)
    predictions = [continuation_text(c, transcriber) for c in continuations]
    result = evaluate.load(str(PELM_METRIC)).compute(
        predictions=predictions, references=list(references), contexts=list(prompt_transcripts), model_id=external_lm
    )
    return {**result, "continuations": predictions}
