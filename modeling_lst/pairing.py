"""Whether artefacts belong together: a tokenizer and a model, an adapter and its base.

A tokenizer belongs to a model when it has the same joint id layout, not only the same vocabulary size.

Two joint tokenizers of one size can still place text pieces, markers and speech tokens at different ids (e.g.
1,000 text pieces and 100 units against 1,050 and 50); a model trained with one reads the other's ids as the
wrong tokens and still generates. The model's config records the layout it was built with
(`LSTConfig.from_tokenizer`), so the two are compared field by field before any work starts. The tokenizer side
comes as plain data (`SpeechUnitTextTokenizer.vocabulary_layout()`), because this package ships as remote code
without the tokenizer's.

An adapter belongs to the base it was fine-tuned on: peft loads it onto any base of the same shape without a word
(and the result is nonsense), so fine-tuning records a fingerprint of its base's weights beside the adapter
(`BASE_RECORD`), and loading and release export compare it with the base they are given.
"""

from __future__ import annotations

import hashlib
import json
import os

import torch

BASE_RECORD = "base_model.json"

# The layout fields a config may record; a Llama baseline's config records the size and the special ids only.
LAYOUT_FIELDS = ("vocab_size", "text_token_range", "speech_token_range", "text_marker_id", "speech_marker_id",
                 "pad_token_id", "bos_token_id", "eos_token_id")


def layout_differences(config, layout: dict) -> list[str]:
    """Each layout field that the config records and that differs from the tokenizer's, described."""
    differences = []
    for name in LAYOUT_FIELDS:
        if getattr(config, name, None) is None or name not in layout:
            continue
        model_value, tokenizer_value = getattr(config, name), layout[name]
        if isinstance(model_value, (list, tuple)):
            model_value, tokenizer_value = list(model_value), list(tokenizer_value)
        if model_value != tokenizer_value:
            differences.append(f"{name} {model_value} in the model, {tokenizer_value} in the tokenizer")
    return differences


def check_tokenizer_matches_model(config, tokenizer, model_name, tokenizer_name) -> None:
    """One error naming both sides and every difference, or nothing. A tokenizer without a joint layout (any
    other transformers tokenizer) is compared by its size."""
    joint = hasattr(tokenizer, "vocabulary_layout")
    layout = tokenizer.vocabulary_layout() if joint else {"vocab_size": len(tokenizer)}
    differences = layout_differences(config, layout)
    if differences:
        raise ValueError(f"The tokenizer {tokenizer_name} does not belong to the model {model_name}: "
                         f"{'; '.join(differences)}. Use the tokenizer saved with the model (in its folder), or "
                         "build the model's config from this tokenizer (LSTConfig.from_tokenizer) and train it.")


def base_fingerprint(model) -> str:
    """A hash of the pretrained weights (a task head, `score`, is new and left out), over the rows of the token
    embeddings that existed before any resizing (`vocab_size` is the base's own)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith("score.") or ".score." in name:
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def base_record(base_path: str | os.PathLike, fingerprint: str) -> str:
    """The text of `base_model.json`, saved beside an adapter."""
    return json.dumps({"base_model": os.fspath(base_path), "fingerprint": fingerprint}, indent=2) + "\n"


def check_adapter_base(record: dict, base_model, adapter_name, base_name) -> None:
    """The base an adapter is put on has the weights its `BASE_RECORD` names, or one error naming both."""
    fingerprint = base_fingerprint(base_model)
    if fingerprint != record["fingerprint"]:
        raise ValueError(f"The adapter in {adapter_name} was trained on another base model than {base_name} (weights "
                         f"fingerprint {fingerprint[:12]}, expected {record['fingerprint'][:12]} of "
                         f"{record['base_model']}): pass the base it was fine-tuned from.")
