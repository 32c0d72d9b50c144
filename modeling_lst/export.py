"""Save an LST checkpoint that loads with `trust_remote_code=True` where this package is not installed.

transformers copies the files defining the registered classes (and their relative imports) next to the
weights and writes an `auto_map`. Registration is class-level state in transformers, so it is set only
for the duration of the save: ordinary `save_pretrained` calls stay code-free.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import re
import tempfile
from pathlib import Path

from .configuration_lst import LSTConfig
from .modeling_lst import LSTForCausalLM, LSTForSequenceClassification, LSTModel

AUTO_CLASSES = {
    LSTModel: "AutoModel",
    LSTForCausalLM: "AutoModelForCausalLM",
    LSTForSequenceClassification: "AutoModelForSequenceClassification",
}


def save_with_remote_code(model, save_directory: str | os.PathLike, tokenizer=None, **save_kwargs) -> None:
    """`save_pretrained` plus the modeling (and tokenizer) code, loadable with `trust_remote_code=True`.

    All LST heads are listed in `auto_map`, so `AutoModel`, `AutoModelForCausalLM` and
    `AutoModelForSequenceClassification` each load the checkpoint with their own head. `save_kwargs` go to
    the model's `save_pretrained` (e.g. `max_shard_size`).
    """
    if type(model) not in AUTO_CLASSES:
        raise ValueError(f"Expected one of {[c.__name__ for c in AUTO_CLASSES]}, got {type(model).__name__}.")
    registered = [LSTConfig, type(model)] + ([type(tokenizer)] if tokenizer is not None else [])
    previous = {cls: cls.__dict__.get("_auto_class") for cls in registered}
    try:
        LSTConfig.register_for_auto_class()
        type(model).register_for_auto_class(AUTO_CLASSES[type(model)])
        model.save_pretrained(save_directory, **save_kwargs)
    finally:
        for cls, value in previous.items():
            cls._auto_class = value
    if tokenizer is not None:
        save_tokenizer_with_remote_code(tokenizer, save_directory)

    _add_auto_map(Path(save_directory) / "config.json", {auto: _auto_map_entry(cls) for cls, auto in AUTO_CLASSES.items()})


def save_tokenizer_with_remote_code(tokenizer, save_directory: str | os.PathLike) -> None:
    """`save_pretrained` of the joint tokenizer with its code and `auto_map`, so `AutoTokenizer` loads it with
    `trust_remote_code=True` anywhere (the Llama baseline's releases need this too)."""
    previous = type(tokenizer).__dict__.get("_auto_class")
    try:
        type(tokenizer).register_for_auto_class("AutoTokenizer")
        tokenizer.save_pretrained(save_directory)
    finally:
        type(tokenizer)._auto_class = previous


def save_processor_with_remote_code(processor, save_directory: str | os.PathLike) -> None:
    """`save_pretrained` of a `SpeechTextProcessor` with its code and `auto_map`s, so `AutoProcessor` and
    `AutoFeatureExtractor` load it (and the unit feature extractor) with `trust_remote_code=True` anywhere.

    transformers copies a class's file and its one-dot relative imports from that file's folder only, while the
    processor's code spans `tokenization/`'s subpackages (speech, alignment). So the processor is saved plainly,
    its code is written here flat (`write_flat_code`), and the `auto_map`s are the ones transformers writes.
    """
    processor.save_pretrained(save_directory)
    save_tokenizer_with_remote_code(processor.tokenizer, save_directory)
    directory = Path(save_directory)
    for cls in (type(processor), type(processor.feature_extractor)):
        write_flat_code(cls.__module__, directory)
    processor_entry = {"AutoProcessor": _auto_map_entry(type(processor))}
    extractor_entries = {"AutoFeatureExtractor": _auto_map_entry(type(processor.feature_extractor)), **processor_entry}
    _add_auto_map(directory / "processor_config.json", processor_entry, {"feature_extractor": extractor_entries})
    _add_auto_map(directory / "preprocessor_config.json", extractor_entries)
    _add_auto_map(directory / "tokenizer_config.json", processor_entry)


def write_flat_code(module_name: str, directory: Path) -> list[Path]:
    """Writes `module_name`'s file and every module it imports relatively (transitively) into `directory`, side
    by side, each relative import rewritten to name its sibling (`from ..speech.audio import x` becomes
    `from .audio import x`): the one-folder layout that `trust_remote_code` loading imports from."""
    sources, pending = {}, [module_name]
    while pending:
        name = pending.pop()
        if name in sources:
            continue
        module = importlib.import_module(name)
        text = Path(module.__file__).read_text(encoding="utf-8")
        lines = text.splitlines(keepends=True)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("lst_speech"):
                raise ValueError(f"{name} imports {node.module} absolutely: remote code needs relative imports.")
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            if node.module is None:
                raise ValueError(f"{name} has a `from . import ...`: remote code needs `from .module import name`.")
            target = importlib.util.resolve_name("." * node.level + node.module, module.__package__)
            pending.append(target)
            line = lines[node.lineno - 1]
            lines[node.lineno - 1] = line[: node.col_offset] + re.sub(
                r"^from\s+\.+[\w.]*\s+import", f"from .{target.rpartition('.')[2]} import", line[node.col_offset :])
        sources[name] = "".join(lines)
    files = {}
    for name, text in sources.items():
        file = directory / f"{name.rpartition('.')[2]}.py"
        if file in files:
            raise ValueError(f"{name} and {files[file]} would both be {file.name}: rename one.")
        files[file] = name
        file.write_text(text, encoding="utf-8")
    return list(files)


def _auto_map_entry(cls) -> str:
    return f"{cls.__module__.rpartition('.')[2]}.{cls.__name__}"


def _add_auto_map(config_file: Path, entries: dict, nested: dict | None = None) -> None:
    """Adds `entries` to the file's `auto_map`, and each of `nested` to the `auto_map` of that section (a
    processor's config holds its feature extractor's config as a section)."""
    config = json.loads(config_file.read_text(encoding="utf-8"))
    sections = [(config, entries)] + [(config[key], value) for key, value in (nested or {}).items()]
    for section, section_entries in sections:
        section["auto_map"] = {**section.get("auto_map", {}), **section_entries}
    _write_json(config_file, config)


def _write_json(path: Path, data: dict) -> None:
    """Replaces `path` atomically: a reader sees the old file or the new one, never half of one."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".json", encoding="utf-8") as out:
        json.dump(data, out, indent=2, sort_keys=True)
        out.write("\n")
    os.replace(out.name, path)
