"""What `from_pretrained` of LST's config and models checks before loading, and what it adds to a failure.

transformers reads a local directory without `config.json` as an empty config (LST's defaults: the 1B shape) and
reports a missing or truncated weights file without naming it; a local path that does not exist comes back as a
bad repo id. The checks here run first, on local directories only, and name the files. (The tokenizer has its
own twin in tokenization/tokenizer_files.py: remote code copies each package's files alone, so neither can import
the other.)
"""

from __future__ import annotations

import contextlib
import json
import os

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def local_directory(name_or_path, kwargs: dict) -> str | None:
    """The local directory a `from_pretrained` call reads (with its `subfolder`), or None for a repo id or for no
    path at all (`from_pretrained(None, config=..., state_dict=...)`)."""
    if name_or_path is None:
        return None
    path = os.fspath(name_or_path)
    if kwargs.get("subfolder"):
        path = os.path.join(path, kwargs["subfolder"])
    return path if os.path.isdir(path) else None


def reads_as_path(name_or_path) -> bool:
    """Whether a name that is not an existing directory was meant as a local path rather than an 'org/name' id."""
    text = os.fspath(name_or_path)
    return os.path.isabs(text) or text.startswith((".", "~")) or text.count("/") > 1 or "\\" in text


def _listing(directory: str) -> str:
    names = sorted(os.listdir(directory))
    return ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "") if names else "nothing"


def check_model_directory(directory: str, needs_config: bool = True, needs_weights: bool = True) -> None:
    """A saved model's directory holds `config.json` and readable weights (every shard's safetensors header)."""
    if needs_config and not os.path.isfile(os.path.join(directory, "config.json")):
        raise OSError(f"{directory} has no config.json (it holds {_listing(directory)}): it is not a saved model. "
                      "Pass the directory that save_pretrained, pretrain.py's final/ or `lst export` wrote.")
    if not needs_weights:
        return
    present = [name for name in WEIGHT_FILES if os.path.isfile(os.path.join(directory, name))]
    if not present:
        raise OSError(f"{directory} has no weights: none of {', '.join(WEIGHT_FILES)} (it holds "
                      f"{_listing(directory)}). The save was interrupted or the files were moved: save the model "
                      "again.")
    if present[0] == "model.safetensors":
        check_safetensors(os.path.join(directory, "model.safetensors"))
    elif present[0] == "model.safetensors.index.json":
        index_path = os.path.join(directory, "model.safetensors.index.json")
        try:
            shards = sorted(set(json.loads(open(index_path, encoding="utf-8").read())["weight_map"].values()))
        except (ValueError, KeyError) as error:
            raise OSError(f"{index_path} is not a valid shard index ({error}): save the model again.") from error
        for shard in shards:
            check_safetensors(os.path.join(directory, shard))


def check_safetensors(path: str) -> None:
    """The file exists and its header parses (cheap: the header only), so a truncated file is named."""
    from safetensors import safe_open

    if not os.path.isfile(path):
        raise OSError(f"The weights file {path} is missing: the save was interrupted or the file was moved.")
    try:
        with safe_open(path, framework="pt") as handle:
            handle.keys()
    except Exception as error:  # safetensors raises its own SafetensorError for every kind of damage
        raise OSError(f"The weights file {path} ({os.path.getsize(path)} bytes) is damaged or truncated ({error}): "
                      "save or download it again.") from error


@contextlib.contextmanager
def checked_load(name_or_path, kwargs: dict, needs_weights: bool, preset_names=()):
    """Checks a local directory before `from_pretrained` reads it; adds to a failed load by repo id (offline, no
    cache, no such repo) what the user can do instead: a local directory, or, for a preset's name, that presets
    are configurations and no weights are published. (`AutoConfig` / `AutoModel` fail before they know the model
    is LST, so only LST's own classes can say it.)"""
    directory = local_directory(name_or_path, kwargs)
    # A PEFT adapter's directory names its base model instead; transformers (and peft) check it.
    if directory is not None and not os.path.isfile(os.path.join(directory, "adapter_config.json")):
        check_model_directory(directory, needs_config=kwargs.get("config") is None, needs_weights=needs_weights)
    try:
        yield
    except OSError as error:
        if directory is not None or name_or_path is None:
            raise
        text = os.fspath(name_or_path)
        if reads_as_path(text):
            raise OSError(f"There is no directory {text!r} (it reads as a local path, not an 'org/name' repo id): "
                          "check the path.") from error
        name = text.rstrip("/").split("/")[-1]
        hint = (f"Could not load {text!r}. A model saved with save_pretrained or `lst export` loads "
                "from its local directory: pass that path instead.")
        if name in preset_names:
            hint += (f" {name!r} is also the name of one of LST's presets, which are configurations, not published "
                     f"weights (no LST weights are published): build one with LSTConfig.from_tokenizer(tokenizer, "
                     f"preset={name!r}), train it with `python -m lst_speech.training.pretrain --preset {name}`, and publish it with "
                     "`lst export` and `lst push`.")
        raise OSError(f"{error}\n\n{hint}") from error
