"""The documentation runs: every ```python block of README.md and docs/*.md is executed.

Each file's blocks run in order in one namespace (a later block may use what an earlier one made), in a fresh
temporary working directory, offline. A block that cannot run here (it needs the Hub, a GPU, or minutes) is
written as ```bash or ```text, or is marked by an HTML comment `<!-- no-run: why -->` on the line right before
its fence. Tracebacks point at the Markdown file and line. The relative links between the pages are checked too.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NO_RUN = "<!-- no-run"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>```+)(?P<info>[^`]*)$")
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def code_blocks(path: Path) -> list[dict]:
    """Every fenced block of a Markdown file: its language, first code line (1-based), code and no-run flag."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, ticks = opening["indent"], opening["ticks"]
        end = index + 1
        while end < len(lines) and lines[end].strip() != ticks:
            end += 1
        if end == len(lines):
            raise AssertionError(f"{path.name}:{index + 1}: a code fence that is never closed")
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[index + 1:end]]
        blocks.append({
            "language": opening["info"].strip().split(" ")[0].lower(),
            "line": index + 2,
            "code": textwrap.dedent("\n".join(body)),
            "no_run": index > 0 and lines[index - 1].strip().startswith(NO_RUN),
        })
        index = end + 1
    return blocks


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", DOCS, ids=name)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    for variable, value in OFFLINE.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for block in code_blocks(path):
        if block["language"] != "python" or block["no_run"]:
            continue
        # Padded so that a traceback's line number is the line in the Markdown file.
        code = "\n" * (block["line"] - 1) + block["code"]
        exec(compile(code, str(path), "exec"), namespace)  # noqa: S102 - running the documentation is the test


def test_no_run_markers_are_few_and_explained():
    marked = [(name(path), block["line"]) for path in DOCS for block in code_blocks(path) if block["no_run"]]
    assert len(marked) <= 3, f"Too many blocks marked no-run: {marked}"
    for path in DOCS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith(NO_RUN):
                assert re.match(r"<!-- no-run: \S.* -->$", line.strip()), f"{name(path)}: say why: {line.strip()}"


LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a file's headings: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^#+\s+(.*)$", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading[1].strip().lower())
            found.add(text.replace(" ", "-"))
    return found


@pytest.mark.parametrize("path", DOCS, ids=name)
def test_relative_links_resolve(path):
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)  # links inside code are code
    for match in LINK.finditer(text):
        target = match["target"]
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        assert destination.exists(), f"{name(path)}: the link {target!r} points at a missing file"
        if anchor and destination.suffix == ".md":
            assert anchor in anchors(destination), f"{name(path)}: no heading for #{anchor} in {destination.name}"
