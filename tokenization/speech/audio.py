"""Audio in: reading files and making waveforms what an extractor expects, with clear errors.

Conversions users expect (signed and unsigned integer PCM to float, stereo to mono in either layout,
resampling with soxr) are done and logged; anything that would give a silently wrong result (empty, silent,
NaN/inf audio, unreadable or missing files, an ambiguous channel layout, audio shorter than the extractor's
analysis window) is an error that says what is wrong.
"""

from __future__ import annotations

import logging
import os
import struct

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
    declared = declared_frames(path)
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


def declared_frames(path) -> int | None:
    """The frame count a file's header declares, to compare with what could be read. libsndfile silently shortens
    a truncated WAV or AIFF to the data present and reports that as the length, so those two headers are read
    here (the stdlib's `wave` reads PCM only, not float WAV, and `aifc` is gone from Python 3.13); FLAC and Ogg
    fail loudly on a cut, and for the rest (MP3, ...) soundfile reports the length the stream header declares."""
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) == 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
            return _declared_riff_frames(handle)
        if len(head) == 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return _declared_aiff_frames(handle)
        if head[:4] == b"riff":  # Sony Wave64: 16-byte chunk ids (the FourCC first), 64-bit sizes
            handle.seek(40)
            return _declared_riff_frames(handle, wave64=True)
        if head[:4] == b".snd":  # Sun AU: the data size sits in the fixed header
            return _declared_au_frames(handle)
        if head[:8] == b"NIST_1A\n":  # NIST SPHERE: a text header with sample_count
            handle.seek(0)
            return _declared_nist_frames(handle.read(1024))
    try:
        return soundfile.info(path).frames
    except (RuntimeError, soundfile.LibsndfileError):
        return None


def _chunks(handle, byte_order: str, wave64: bool = False):
    """(FourCC, data size, offset of the data) of each chunk from the current position to the end of the file:
    RIFF/AIFF chunks (8-byte headers, even padding) or Wave64's (24-byte headers counted in the size, 8-byte
    padding)."""
    header_size = 24 if wave64 else 8
    while len(header := handle.read(header_size)) == header_size:
        if wave64:
            size = struct.unpack("<Q", header[16:])[0] - header_size
        else:
            size = struct.unpack(byte_order + "I", header[4:])[0]
        offset = handle.tell()
        yield header[:4], size, offset
        handle.seek(offset + size + (-size % 8 if wave64 else size & 1))


def _declared_riff_frames(handle, wave64: bool = False) -> int | None:
    block_align = data_size_64 = None
    for chunk_id, size, offset in _chunks(handle, "<", wave64):
        if chunk_id == b"ds64" and size >= 16:  # RF64: the 64-bit sizes, the data chunk's second
            handle.seek(offset + 8)
            data_size_64 = struct.unpack("<Q", handle.read(8))[0]
        elif chunk_id == b"fmt " and size >= 16:
            handle.seek(offset + 12)
            block_align = struct.unpack("<H", handle.read(2))[0]
        elif chunk_id == b"data" and block_align:
            return (data_size_64 if size == 0xFFFFFFFF and data_size_64 is not None else size) // block_align
    return None


AU_SAMPLE_BYTES = {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 4, 7: 8, 27: 1}  # encoding -> bytes per sample


def _declared_au_frames(handle) -> int | None:
    handle.seek(8)
    data_size, encoding, _, channels = struct.unpack(">IIII", handle.read(16))
    if data_size == 0xFFFFFFFF or encoding not in AU_SAMPLE_BYTES or not channels:  # "unknown size"
        return None
    return data_size // (AU_SAMPLE_BYTES[encoding] * channels)


def _declared_nist_frames(header: bytes) -> int | None:
    for line in header.decode("ascii", errors="replace").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "sample_count":
            return int(fields[2])
    return None


def _declared_aiff_frames(handle) -> int | None:
    for chunk_id, size, offset in _chunks(handle, ">"):
        if chunk_id == b"COMM" and size >= 6:
            handle.seek(offset + 2)
            return struct.unpack(">I", handle.read(4))[0]
    return None


_logged_conversions: set[tuple] = set()


def _log_conversion(message: str, name: str, *arguments) -> None:
    """Each kind of conversion (`message` with its `arguments`: dtype, channels, rates) at INFO for the first file
    `name` that needs it, then at DEBUG: corpora convert thousands of files, each with a name of its own."""
    key = (message, *arguments)
    level = logging.DEBUG if key in _logged_conversions else logging.INFO
    _logged_conversions.add(key)
    logger.log(level, message + ("" if level == logging.DEBUG else " (further ones are logged at DEBUG)"), name,
               *arguments)


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
