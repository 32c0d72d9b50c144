"""Outputs that appear whole or not at all: a file or directory is written under a temporary name beside its
destination and renamed into place when complete; if writing fails, the temporary is removed and the error
propagates, so a failed command leaves neither half an output nor its leftovers."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike):
    """Yields a temporary path beside `destination` to write a file or a directory into; on success it replaces
    `destination` (an existing directory is removed first), on failure it is deleted."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial")
    _remove(partial)
    try:
        yield partial
    except BaseException:
        _remove(partial)
        raise
    if destination.is_dir() and not destination.is_symlink():
        shutil.rmtree(destination)
    os.replace(partial, destination)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """`text` into `path` through a temporary file renamed into place: a reader never sees half a file."""
    with atomic_path(path) as partial:
        partial.write_text(text)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
