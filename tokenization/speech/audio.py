"""Audio in: reading files and making waveforms what an extractor expects, with clear errors.

Conversions users expect (signed and unsigned integer PCM to float, stereo to mono in either layout,
resampling with soxr) are done and logged; anything that would give a silently wrong result (empty, silent,
NaN/inf audio, unreadable or missing files, an ambiguous channel layout, audio shorter than the extractor's
analysis window) is an error that says what is wrong.
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
    """A file's samples (float32, channels last) and sampling rate, via soundfile (raw G.722 via PyAV)."""
    if not os.path.isfile(path):
        what = "is a directory, not an audio file" if os.path.isdir(path) else "does not exist"
        raise FileNotFoundError(f"Audio file {os.fspath(path)!r} {what}: check the path (relative paths are read "
                                f"from {os.getcwd()!r}).")
    if os.fspath(path).lower().endswith(".g722"):
        return read_g722(path)
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


G722_RATE = 16000  # G.722 codes 16 kHz audio (7 kHz bandwidth) whatever its 8 kHz RTP clock says


def read_g722(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A headerless G.722 file (telephony prompts such as Asterisk's), which libsndfile cannot read, decoded by
    FFmpeg's G.722 decoder through PyAV (installed with the `whisper` extra, as faster-whisper's audio reader)."""
    try:
        import av
    except ImportError as error:
        raise ValueError(f"Cannot read {os.fspath(path)!r}: G.722 needs PyAV (`pip install 'lst-speech[whisper]'` "
                         "or `pip install av`).") from error
    try:
        with av.open(os.fspath(path), format="g722") as container:
            frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
            rate = container.streams.audio[0].rate
    except (av.FFmpegError, IndexError) as error:
        raise ValueError(f"Cannot read G.722 file {os.fspath(path)!r}: {error}") from error
    if not frames or rate != G722_RATE:
        raise ValueError(f"G.722 file {os.fspath(path)!r} decoded to {'no audio' if not frames else f'{rate} Hz'}; "
                         f"expected {G722_RATE} Hz speech.")
    samples = np.concatenate(frames, axis=1)[0]  # mono, planar int16
    return (samples.astype(np.float32) / 32768.0), rate


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


# At most this many channels: a 2-D array's shorter axis is its channels only if it is this short and the
# other axis is longer; anything else is ambiguous and refused rather than guessed.
MAX_CHANNELS = 8


def channel_axis(array: np.ndarray, name: str = "audio") -> int:
    """The channel axis of a 2-D waveform, `(samples, channels)` (soundfile's layout) or `(channels, samples)`
    (torchaudio's): the axis of at most MAX_CHANNELS when the other is longer."""
    short = int(np.argmin(array.shape))
    if array.shape[short] > MAX_CHANNELS or array.shape[0] == array.shape[1]:
        raise ValueError(f"{name} has shape {array.shape}: neither axis reads as at most {MAX_CHANNELS} channels "
                         "next to a longer time axis. Pass mono (samples,) or (samples, channels).")
    return short


def feature_encoder_receptive_field(config) -> int:
    """Samples one output frame of a wav2vec2-family convolutional feature encoder (HuBERT, wav2vec2) sees
    (400 at 16 kHz for the usual 7 layers): the shortest input that gives one frame."""
    field, stride = 1, 1
    for kernel, step in zip(config.conv_kernel, config.conv_stride):
        field += (kernel - 1) * stride
        stride *= step
    return field


def duration_seconds(waveform, sampling_rate: int, name: str = "audio") -> float:
    """Seconds of audio in a mono or multi-channel waveform (whichever axis holds the channels)."""
    array = np.asarray(waveform)
    samples = array.shape[1 - channel_axis(array, name)] if array.ndim == 2 else array.shape[0]
    return samples / sampling_rate


def prepare_waveform(waveform, sampling_rate: int, target_rate: int, name: str = "audio",
                     min_samples: int = 1) -> np.ndarray:
    """A mono float32 waveform at `target_rate`, or a ValueError naming the problem. `min_samples` (at
    `target_rate`) is the extractor's analysis window: shorter audio has no full frame and is refused."""
    array = np.asarray(waveform)
    if array.size == 0:
        raise ValueError(f"{name} is empty.")
    if np.issubdtype(array.dtype, np.signedinteger):
        scale = float(np.iinfo(array.dtype).max) + 1.0
        _log_conversion("%s: converting %s PCM to float in [-1, 1)", name, array.dtype)
        array = array.astype(np.float32) / scale
    elif np.issubdtype(array.dtype, np.unsignedinteger):  # unsigned PCM (8-bit WAV) is offset by half its range
        middle = float(np.iinfo(array.dtype).max // 2 + 1)
        _log_conversion("%s: converting unsigned %s PCM (centred on %d) to float in [-1, 1)", name, array.dtype,
                        int(middle))
        array = (array.astype(np.float64) - middle).astype(np.float32) / middle
    elif not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} has dtype {array.dtype}; expected float or integer PCM samples.")
    if array.ndim == 2:
        axis = channel_axis(array, name)
        _log_conversion("%s: downmixing %d channels to mono", name, array.shape[axis])
        array = array.mean(axis=axis)
    elif array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (mono) or 2-D (channels), got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite samples.")
    if not np.any(array):
        raise ValueError(f"{name} is silent (all samples are zero).")
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)) or sampling_rate <= 0:
        raise ValueError(f"{name}: sampling rate must be a positive integer number of Hz, got {sampling_rate!r}.")
    array = array.astype(np.float32, copy=False)
    if sampling_rate != target_rate:
        _log_conversion("%s: resampling %d Hz -> %d Hz", name, sampling_rate, target_rate)
        array = soxr.resample(array, sampling_rate, target_rate).astype(np.float32)
    if array.size < min_samples:
        raise ValueError(f"{name} is {1000 * array.size / target_rate:.1f} ms long, shorter than one analysis window "
                         f"({1000 * min_samples / target_rate:.0f} ms, {min_samples} samples at {target_rate} Hz): it "
                         "has no full frame to make a unit from. Drop the clip or pad it with real context.")
    return array
