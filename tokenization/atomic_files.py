"""Outputs that appear whole or not at all, and only in place of what may be replaced.

A file or directory is written under a temporary name beside its destination, unique to its writer (host,
process and a random part), and renamed into place when complete; if writing fails, the temporary is removed and
the error propagates, so a failed command leaves neither half an output nor its leftovers. Two writers of one
destination never share a temporary: the last to finish wins and the destination always holds one whole output.
A temporary left by a killed writer is removed by the next writer of that destination on the same host.
A directory output is marked and only ever takes the place of its own command's earlier output
(`output_safety`); a file output replaces the file of that name, as `cp` would, since the command was given
that file's path to write.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import itertools
import os
import shutil
import socket
import tempfile
from pathlib import Path

from .output_safety import ForeignOutputError, check_replaceable, write_marker


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike):
    """Yields a temporary path beside `destination` to write a file into; on success it replaces `destination`
    (an existing file of that name is replaced; a folder there is refused), on failure it is deleted."""
    destination = Path(destination)
    _refuse_folder(destination)
    with _scratch(destination) as scratch:
        partial = scratch / destination.name
        yield partial
        _refuse_folder(destination)
        os.replace(partial, destination)


@contextlib.contextmanager
def atomic_directory(destination: str | os.PathLike, owner: str):
    """Yields an empty temporary folder to write a directory output into; on success it is marked as `owner`'s
    and takes the place of `destination`, which must be absent, empty or `owner`'s earlier output (checked before
    any work and again at the swap). The old output is renamed aside, the new one renamed in, then the old one
    deleted: a reader sees the old output, the new one or, between the two renames, none, never a mixture; when
    another writer's output took the place in between, it is moved aside in turn."""
    destination = Path(destination)
    check_replaceable(destination, owner)
    with _scratch(destination) as scratch:
        partial = scratch / destination.name
        partial.mkdir()
        yield partial
        write_marker(partial, owner)
        for attempt in itertools.count():
            check_replaceable(destination, owner)
            with contextlib.suppress(FileNotFoundError):
                os.rename(destination, scratch / f"replaced-{attempt}")
            try:
                os.rename(partial, destination)
                break
            except OSError as error:  # another writer renamed its output in first
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """`text` into `path` through a temporary file renamed into place: a reader never sees half a file."""
    with atomic_path(path) as partial:
        partial.write_text(text)


@contextlib.contextmanager
def _scratch(destination: Path):
    """A new folder beside `destination`, this writer's alone, deleted with whatever is left in it."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{destination.name}.{socket.gethostname()}-"
    for abandoned in destination.parent.glob(glob.escape(prefix) + "*.partial"):
        pid = abandoned.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(abandoned, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}.", suffix=".partial", dir=destination.parent))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _refuse_folder(destination: Path) -> None:
    if destination.is_dir():
        raise ForeignOutputError(f"{destination} is a folder, where a file is written: choose another output path "
                                 "or remove it yourself.")
