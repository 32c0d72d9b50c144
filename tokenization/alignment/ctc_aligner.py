"""Forced word alignment with a character-CTC model (any language): any transformers `Wav2Vec2ForCTC`, or our
Whisper CTC head (`whisper_ctc`, trained by `lst aligner train`: the CTC model that runs offline here).

The transcript's characters (words joined by the model's word delimiter) are aligned to the model's
frame-wise log-probabilities by CTC Viterbi. `torchaudio.functional.forced_align` does this when torchaudio
is importable; it is optional here (its only wheels are CUDA builds that break next to a CPU torch, see the
README's Platform notes), so `ctc_viterbi` is our own implementation of the same dynamic programme, tested equal.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoTokenizer, Wav2Vec2ForCTC

from ..speech.audio import feature_encoder_receptive_field, prepare_waveform
from .word_alignment import WordAlignment


def ctc_viterbi(log_probs: np.ndarray, targets: np.ndarray, blank: int) -> np.ndarray:
    """The most likely CTC path through `targets`: each frame's label (a target token or `blank`).

    States are the targets interleaved with blanks (2L + 1); a state is entered from itself, the previous
    state, or (for a token differing from the one two states back) from two states back. Vectorised over
    states, one numpy step per frame.
    """
    frames, length = log_probs.shape[0], len(targets)
    states = np.full(2 * length + 1, blank, dtype=np.int64)
    states[1::2] = targets
    can_skip = np.zeros(len(states), dtype=bool)
    can_skip[3::2] = targets[1:] != targets[:-1]
    score = np.full(len(states), -np.inf)
    score[0] = log_probs[0, blank]
    if length:
        score[1] = log_probs[0, targets[0]]
    back = np.zeros((frames, len(states)), dtype=np.int8)  # 0: stay, 1: from previous, 2: from two back
    for frame in range(1, frames):
        from_previous = np.r_[-np.inf, score[:-1]]
        from_two_back = np.where(can_skip, np.r_[-np.inf, -np.inf, score[:-2]], -np.inf)
        candidates = np.stack([score, from_previous, from_two_back])
        back[frame] = candidates.argmax(0)
        score = candidates.max(0) + log_probs[frame, states]
    end_states = [len(states) - 1] + ([len(states) - 2] if length else [])
    state = max(end_states, key=lambda s: score[s])
    if not np.isfinite(score[state]):
        raise ValueError(f"{frames} frames cannot hold the {length} transcript tokens; the audio is too short.")
    path = np.empty(frames, dtype=np.int64)
    for frame in range(frames - 1, -1, -1):
        path[frame] = state
        state -= int(back[frame, state])  # a numpy int8 would make `state` int8 too, which wraps past 127
    return states[path]


def _forced_align(log_probs: np.ndarray, targets: np.ndarray, blank: int) -> np.ndarray:
    try:
        import torchaudio.functional
    except (ImportError, OSError):  # absent, or a CUDA build that cannot load next to a CPU torch
        return ctc_viterbi(log_probs, targets, blank)
    labels, _ = torchaudio.functional.forced_align(
        torch.from_numpy(log_probs)[None].float(), torch.from_numpy(targets)[None].int(), blank=blank
    )
    return labels[0].numpy().astype(np.int64)


def token_frame_spans(labels: np.ndarray, num_targets: int, blank: int) -> np.ndarray:
    """`[start, end)` frames of each target token in a CTC path (a new token starts at a non-blank label
    that follows a blank or a different label)."""
    # CTC separates a repeated token (the "ll" of "hello") by a blank, so this rule also splits those.
    starts_token = (labels != blank) & np.r_[True, labels[1:] != labels[:-1]]
    token_of_frame = np.cumsum(starts_token) - 1
    if token_of_frame[-1] + 1 != num_targets:
        raise ValueError(f"The path holds {token_of_frame[-1] + 1} tokens, not {num_targets}.")
    spans = np.zeros((num_targets, 2), dtype=np.int64)
    voiced = np.flatnonzero(labels != blank)
    tokens = token_of_frame[voiced]
    spans[:, 0] = voiced[np.r_[0, np.flatnonzero(np.diff(tokens)) + 1]]
    spans[:, 1] = voiced[np.r_[np.flatnonzero(np.diff(tokens)), len(voiced) - 1]] + 1
    return spans


class CtcAligner:
    """Word times from a character-CTC model: `CtcAligner("facebook/wav2vec2-base-960h")`, a local copy, or a
    folder `lst aligner train` wrote."""

    def __init__(self, model_name_or_path: str | os.PathLike):
        from transformers import AutoConfig

        from .whisper_ctc import WhisperCtcConfig, WhisperCtcHead

        try:
            config = AutoConfig.from_pretrained(model_name_or_path)
            self.tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
            if isinstance(config, WhisperCtcConfig):
                self.model = WhisperCtcHead.from_pretrained(model_name_or_path).eval()
                self.frame_rate = config.frame_rate
                self.log_probs = self.model.frame_log_probs
            else:
                self.model = Wav2Vec2ForCTC.from_pretrained(model_name_or_path).eval()
                self.feature_extractor = AutoFeatureExtractor.from_pretrained(model_name_or_path)
                self.frame_rate = self.feature_extractor.sampling_rate / math.prod(self.model.config.conv_stride)
        except OSError as error:
            raise ValueError(
                f"Could not load a CTC model (Wav2Vec2ForCTC, or an `lst aligner train` head) with its tokenizer from "
                f"{model_name_or_path!r} ({error}); offline, pass a local directory."
            ) from error
        self.blank = self.model.config.pad_token_id
        self.delimiter = self.tokenizer.word_delimiter_token
        self.vocabulary = self.tokenizer.get_vocab()

    def _targets(self, words: list[str]) -> tuple[np.ndarray, list[int]]:
        """Character ids of the words joined by the delimiter, and each word's first target index."""
        casing = next((f for f in (str, str.upper, str.lower) if all(c in self.vocabulary for w in words for c in f(w))),
                      None)
        if casing is None:
            missing = sorted({c for w in words for c in w if c not in self.vocabulary and c.upper() not in self.vocabulary
                              and c.lower() not in self.vocabulary})
            raise ValueError(f"The CTC model's vocabulary lacks the characters {missing}; normalise the transcript.")
        ids, word_starts = [], []
        for index, word in enumerate(words):
            if index:
                ids.append(self.vocabulary[self.delimiter])
            word_starts.append(len(ids))
            ids.extend(self.vocabulary[c] for c in casing(word))
        return np.array(ids, dtype=np.int64), word_starts

    def log_probs(self, waveform, sampling_rate: int) -> np.ndarray:
        """(frames, vocabulary) log-probabilities of a `Wav2Vec2ForCTC` (the Whisper head brings its own)."""
        rate = self.feature_extractor.sampling_rate
        audio = prepare_waveform(waveform, sampling_rate, rate, min_samples=feature_encoder_receptive_field(self.model.config))
        inputs = self.feature_extractor(audio, sampling_rate=rate, return_tensors="pt")
        with torch.no_grad():
            logits = self.model(inputs.input_values).logits[0]
        return torch.log_softmax(logits.float(), dim=-1).numpy()

    def align(self, waveform, sampling_rate: int, transcript: str) -> WordAlignment:
        """Times of the transcript's whitespace-separated words; punctuation around words is not aligned."""
        written = transcript.split()
        words = [w.strip(".,;:!?\"()[]") for w in written]
        if not all(words):
            raise ValueError(f"Words {[w for w, s in zip(written, words) if not s]} hold no characters to align.")
        targets, word_starts = self._targets(words)
        log_probs = self.log_probs(waveform, sampling_rate)
        spans = token_frame_spans(_forced_align(log_probs, targets, self.blank), len(targets), self.blank)
        word_ends = [start + len(word) for start, word in zip(word_starts, words)]
        frames = np.array([(spans[start, 0], spans[end - 1, 1]) for start, end in zip(word_starts, word_ends)])
        characters = []  # each written character's start; punctuation around a word takes its neighbour's
        for text, word, start, end in zip(written, words, word_starts, word_ends):
            first = text.index(word)
            inner = spans[start:end, 0]
            characters.append(np.r_[np.full(first, inner[0]), inner, np.full(len(text) - first - len(word), inner[-1])]
                              / self.frame_rate)
        return WordAlignment(written, frames / self.frame_rate, characters)
