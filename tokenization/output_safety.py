"""What a command may do to the paths it writes: replace or add to only what it wrote itself, and never write
where it reads.

A directory a command writes (a dataset, a release, a run folder) carries `MARKER`, naming the command and when
it was made. A directory with another command's marker, or without one and not empty, holds files this command
did not make: it is refused (`ForeignOutputError`), never replaced or added to. An output folder that is one of
the command's inputs, lies inside one or holds one, and an output file that is an input, are refused before any
work (`OutputOverlapsInput`): writing there would destroy, or mix with, what the command reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

MARKER = ".lst-output.json"


class ForeignOutputError(FileExistsError):
    """An output path holds something this command did not write."""


class OutputOverlapsInput(ValueError):
    """An output path is, holds or lies inside one of the command's inputs."""


def check_replaceable(destination: str | os.PathLike, owner: str) -> None:
    """Raises ForeignOutputError unless `destination` is absent, an empty directory or `owner`'s earlier output."""
    destination = Path(destination)
    remedy = "choose another output path or remove it yourself"
    try:
        found = _inspect(destination)
    except NotADirectoryError:
        raise ForeignOutputError(f"{destination} exists and is a file, where {owner} writes a folder: {remedy}.") \
            from None
    if found is None:
        return
    written_by, empty = found
    if written_by == owner or (written_by is None and empty):
        return
    if written_by is None:
        raise ForeignOutputError(f"{destination} exists and was not written by {owner} (it has no {MARKER}): "
                                 f"{remedy}.")
    raise ForeignOutputError(f"{destination} was written by {written_by}, not {owner}: {remedy}.")


def write_marker(directory: Path, owner: str) -> None:
    """Marks `directory` as `owner`'s output, through a renamed temporary: a reader never sees half a marker."""
    handle, temporary = tempfile.mkstemp(prefix=MARKER, suffix=".partial", dir=directory)
    with os.fdopen(handle, "w") as file:
        json.dump({"written_by": owner, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, file)
    os.replace(temporary, directory / MARKER)


def claim_directory(directory: str | os.PathLike, owner: str) -> Path:
    """A folder `owner` adds to over time (a training run's checkpoints and log, extraction shards): created and
    marked, or taken up again when `owner` marked it before; refused when it holds anything else."""
    directory = Path(directory)
    check_replaceable(directory, owner)
    if not (directory / MARKER).is_file():
        directory.mkdir(parents=True, exist_ok=True)
        write_marker(directory, owner)
    return directory


def remove_output(directory: str | os.PathLike, owner: str) -> None:
    """Deletes `owner`'s earlier output; refuses (ForeignOutputError) anything it did not write."""
    check_replaceable(directory, owner)
    shutil.rmtree(directory)


def check_apart(output: tuple[str, str | os.PathLike], *inputs: tuple[str, str | os.PathLike | None],
                file: bool = False) -> None:
    """Refuses (OutputOverlapsInput) an output folder that is, holds or lies inside one of the inputs, or with
    `file`, an output file (written by name, beside whatever else is there) that is one; each is (the flag that
    named it, the path). Inputs that are not local paths (Hub ids, unset flags) are skipped."""
    flag, path = output
    written = Path(path).resolve()
    for input_flag, input_path in inputs:
        if input_path is None or not Path(input_path).exists():
            continue
        read = Path(input_path).resolve()
        if written == read:
            relation = "is"
        elif read in written.parents and not file:
            relation = "lies inside"
        elif written in read.parents:
            relation = "holds"
        else:
            continue
        raise OutputOverlapsInput(f"{flag} {path} {relation} {input_flag} {input_path}: the output would replace or "
                                  "mix with what the command reads; choose an output outside its inputs.")


def _inspect(destination: Path) -> tuple[str | None, bool] | None:
    """(the command the folder's marker names or None, whether the folder is empty); None when nothing is there;
    NotADirectoryError for a file. Another writer may swap the folder at any moment, so it is read through one
    handle, and read again unless that handle is still the folder at `destination`."""
    while True:
        try:
            handle = os.open(destination, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            return None
        try:
            # a marker being written by another process (claim_directory) is no content of its own
            empty = all(name.startswith(MARKER) for name in os.listdir(handle))
            written_by = _marker_owner(handle)
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.fstat(handle), os.stat(destination)):
                    return written_by, empty
        finally:
            os.close(handle)


def _marker_owner(folder: int) -> str | None:
    try:
        with os.fdopen(os.open(MARKER, os.O_RDONLY, dir_fd=folder)) as file:
            marker = json.load(file)
    except (OSError, ValueError):
        return None
    return marker.get("written_by") if isinstance(marker, dict) else None
