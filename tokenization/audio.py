"""Audio in: reading files and making waveforms what an extractor expects, with clear errors.

Conversions users expect (integer PCM to float, stereo to mono, resampling with soxr) are done and logged;
anything that would give a silently wrong result (empty, silent, NaN/inf audio, unreadable files) is an
error that says what is wrong.
"""

from __future__ import annotations

import logging
import os
import wave

import numpy as np
import soundfile
import soxr

logger = logging.getLogger(__name__)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A file's samples (float32, channels last) and sampling rate, via soundfile."""
    try:
        waveform, sampling_rate = soundfile.read(path, dtype="float32", always_2d=False)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ValueError(f"Cannot read audio file {os.fspath(path)!r}: {error}") from error
    declared = _declared_wav_frames(path)
    if declared is not None and declared > len(waveform):
        raise ValueError(
            f"Audio file {os.fspath(path)!r} is truncated: its header declares {declared} frames but it holds "
            f"{len(waveform)}. Re-export or re-download it."
        )
    return waveform, sampling_rate


def _declared_wav_frames(path) -> int | None:
    """The frame count a PCM WAV header declares. libsndfile silently shortens a truncated WAV to the data
    present (FLAC and others fail loudly), so only WAV needs this; the stdlib `wave` reads the header."""
    try:
        with wave.open(os.fspath(path), "rb") as handle:
            return handle.getnframes()
    except (wave.Error, EOFError, OSError):  # not a PCM WAV (float WAV, FLAC, ...): nothing to compare
        return None


_logged_conversions: set[tuple] = set()


def _log_conversion(message: str, *arguments) -> None:
    """Each kind of conversion at INFO the first time, then at DEBUG: corpora convert thousands of files."""
    key = (message, *arguments)
    level = logging.DEBUG if key in _logged_conversions else logging.INFO
    _logged_conversions.add(key)
    logger.log(level, message + ("" if level == logging.DEBUG else " (further ones are logged at DEBUG)"), *arguments)


def prepare_waveform(waveform, sampling_rate: int, target_rate: int, name: str = "audio") -> np.ndarray:
    """A mono float32 waveform at `target_rate`, or a ValueError naming the problem."""
    array = np.asarray(waveform)
    if array.size == 0:
        raise ValueError(f"{name} is empty.")
    if np.issubdtype(array.dtype, np.integer):
        scale = float(np.iinfo(array.dtype).max) + 1.0
        _log_conversion("%s: converting %s PCM to float in [-1, 1)", name, array.dtype)
        array = array.astype(np.float32) / scale
    elif not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} has dtype {array.dtype}; expected float or integer PCM samples.")
    if array.ndim == 2:
        channels_axis = 0 if array.shape[0] < array.shape[1] else 1
        _log_conversion("%s: downmixing %d channels to mono", name, array.shape[channels_axis])
        array = array.mean(axis=channels_axis)
    elif array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (mono) or 2-D (channels), got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite samples.")
    if not np.any(array):
        raise ValueError(f"{name} is silent (all samples are zero).")
    if sampling_rate <= 0:
        raise ValueError(f"{name}: sampling rate must be positive, got {sampling_rate}.")
    array = array.astype(np.float32, copy=False)
    if sampling_rate != target_rate:
        _log_conversion("%s: resampling %d Hz -> %d Hz", name, sampling_rate, target_rate)
        array = soxr.resample(array, sampling_rate, target_rate).astype(np.float32)
    return array
