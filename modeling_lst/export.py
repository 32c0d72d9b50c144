"""Save an LST checkpoint that loads with `trust_remote_code=True` where this package is not installed.

transformers copies the files defining the registered classes (and their relative imports) next to the
weights and writes an `auto_map`. Registration is class-level state in transformers, so it is set only
for the duration of the save: ordinary `save_pretrained` calls stay code-free.
"""

from __future__ import annotations

import json
import os
import tempfile

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

    config_path = os.path.join(save_directory, "config.json")
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    module = f"{LSTModel.__module__.rsplit('.', 1)[-1]}"
    config["auto_map"].update({auto: f"{module}.{cls.__name__}" for cls, auto in AUTO_CLASSES.items()})
    with tempfile.NamedTemporaryFile("w", dir=save_directory, delete=False, suffix=".json", encoding="utf-8") as out:
        json.dump(config, out, indent=2, sort_keys=True)
        out.write("\n")
    os.replace(out.name, config_path)


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
    `AutoFeatureExtractor` load it (and the unit feature extractor) with `trust_remote_code=True` anywhere."""
    parts = {type(processor): "AutoProcessor", type(processor.feature_extractor): "AutoFeatureExtractor",
             type(processor.tokenizer): "AutoTokenizer"}
    previous = {cls: cls.__dict__.get("_auto_class") for cls in parts}
    try:
        for cls, auto in parts.items():
            cls.register_for_auto_class(auto)
        processor.save_pretrained(save_directory)
    finally:
        for cls, value in previous.items():
            cls._auto_class = value
