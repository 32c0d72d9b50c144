"""Saving and loading fine-tuned adapters safely: the base they belong to, and a vocabulary grown for new tokens.

peft's `PeftModel.from_pretrained` loads an adapter onto whatever base it is given, and onto a base whose
vocabulary was grown for new tokens it fails with a size mismatch. So a fine-tuning run records a fingerprint of its
base beside the adapter (`lst_speech.modeling_lst.pairing`), and `load_finetuned` checks it and resizes the base to
the saved tokenizer first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import peft
from transformers import AutoTokenizer

from lst_speech.modeling_lst.pairing import BASE_RECORD, check_adapter_base, check_tokenizer_matches_model


def load_finetuned(task, path: str | os.PathLike, base_model: str | None = None):
    """A fine-tuned model for evaluation: a full checkpoint as it is, or an adapter on its base (the one the
    adapter records, or `base_model`), checked to be the base it was trained on and resized to the adapter's
    tokenizer where tokens were added. Returns (model, tokenizer)."""
    path = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not (path / "adapter_config.json").is_file():
        return task.load_model(os.fspath(path))[0], tokenizer
    record_file = path / BASE_RECORD
    if not record_file.is_file():
        raise ValueError(f"{path} is a peft adapter without {BASE_RECORD}, so its base cannot be checked; "
                         "load it with peft.PeftModel.from_pretrained on the base you know it was trained on.")
    record = json.loads(record_file.read_text())
    base_path = base_model or record["base_model"]
    model = task.load_model(base_path)[0]
    check_adapter_base(record, model, path, base_path)
    if len(tokenizer) != model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # the adapter brings the new rows
    check_tokenizer_matches_model(model.config, tokenizer, base_path, path)
    return peft.PeftModel.from_pretrained(model, path), tokenizer
