"""Helpers for the pinned set (constraints.txt) used by scripts/test_versions.sh.

    python scripts/pinned_versions.py lowest pyproject.toml        # name==lower-bound for each direct dependency
    python scripts/pinned_versions.py compare constraints.txt new.txt   # what differs, one line a package
    python scripts/pinned_versions.py write freeze.txt constraints.txt  # freeze output -> constraints with header

`write` keeps torch at the CPU wheel the old pins name and leaves out what only a CUDA build of torch brings
(nvidia-*, cuda-*, triton): the latest check may run the newest torch, a CUDA build here, but set-up installs the
CPU wheel.

Parses requirement strings with `packaging` (which pip itself vendors), so names and specifiers follow PEP 508.
"""

from __future__ import annotations

import datetime
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HEADER = """\
# The pinned set: exactly what scripts/setup_env.sh installs (pip -c), the versions the test suite last
# passed with. Written by `bash scripts/test_versions.sh latest --refresh` on {date} after the suite passed
# with them (torch: the newest release there; the pin stays the CPU wheel 2.13.0, which the suite also passed
# with, because a newer torch is a CUDA build here); never edit by hand.
"""
CUDA_ONLY_PREFIXES = ("nvidia-", "cuda-", "triton")
SETUP_EXTRAS = ("dev", "whisper")  # what scripts/setup_env.sh installs with the package


def read_pins(path: Path) -> dict[str, str]:
    """`name==version` lines (comments, blanks and editable lines skipped) as {canonical name: version}; a
    `name @ file` line (a wheel installed from disk) is left out."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-e") or " @ " in line:
            continue
        if "==" not in line:
            raise SystemExit(f"{path}: {line!r} is not a 'name==version' pin.")
        name, version = line.split("==", 1)
        pins[canonicalize_name(name)] = version.strip()
    return pins


def lowest(pyproject: Path) -> list[str]:
    """Each direct dependency (and the extras the set-up installs) pinned to its lower bound; one without a `>=`
    bound is an error."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    requirements = list(project["dependencies"]) + [text for name in SETUP_EXTRAS for text in extras.get(name, [])]
    pins = []
    for text in requirements:
        requirement = Requirement(text)
        if canonicalize_name(requirement.name) == "torch":
            continue  # always the CPU wheel 2.13.0, installed first
        bounds = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if not bounds:
            raise SystemExit(f"{pyproject}: {text!r} has no '>=' lower bound to test.")
        pins.append(f"{requirement.name}=={bounds[0]}")
    return pins


def compare(old: dict[str, str], new: dict[str, str]) -> list[str]:
    lines = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before != after:
            lines.append(f"  {name}: {before or '(absent)'} -> {after or '(absent)'}")
    return lines


def main(argv: list[str]) -> None:
    command, *paths = argv
    if command == "lowest":
        print("\n".join(lowest(Path(paths[0]))))
    elif command == "compare":
        changes = compare(read_pins(Path(paths[0])), read_pins(Path(paths[1])))
        print(f"{len(changes)} package(s) differ from {paths[0]}:" if changes else f"Same versions as {paths[0]}.")
        print("\n".join(changes))
    elif command == "write":
        pins = {name: version for name, version in read_pins(Path(paths[0])).items()
                if not name.startswith(CUDA_ONLY_PREFIXES)}
        pins["torch"] = read_pins(Path(paths[1]))["torch"]
        body = "\n".join(f"{name}=={version}" for name, version in sorted(pins.items()))
        Path(paths[1]).write_text(HEADER.format(date=datetime.date.today().isoformat()) + body + "\n")
    else:
        raise SystemExit(f"unknown command {command!r}: use lowest, compare or write")


if __name__ == "__main__":
    main(sys.argv[1:])
