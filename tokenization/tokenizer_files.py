"""What `SpeechUnitTextTokenizer.from_pretrained` checks in a saved tokenizer's directory before loading it.

Without these checks a missing `text_spm.model` is reported as "needs a text SentencePiece model" without a file
name, a corrupted JSON file as a bare `JSONDecodeError`, a missing `unit_spm.model` silently loads a raw-unit
tokenizer with another vocabulary, and a local path that does not exist as a bad repo id. (The model's twin is
modeling_lst/loading_checks.py: remote code copies each package's files alone, so neither can import the other.)
"""

from __future__ import annotations

import json
import os

TEXT_MODEL_FILE = "text_spm.model"
UNIT_PIECE_MODEL_FILE = "unit_spm.model"
JSON_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
# tokenizer.json names unit pieces "<up_i>" (raw units are "<u_i>"): their model must be beside it.
UNIT_PIECE_TOKEN = '"<up_0>"'


def reads_as_path(name_or_path) -> bool:
    """Whether a name that is not an existing directory was meant as a local path rather than an 'org/name' id."""
    text = os.fspath(name_or_path)
    return os.path.isabs(text) or text.startswith((".", "~")) or text.count("/") > 1 or "\\" in text


def read_json_file(path: str) -> dict:
    """A JSON file's contents, or an error naming the file (and what to do) when it does not parse."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (ValueError, UnicodeDecodeError) as error:
        raise OSError(f"{path} is not valid JSON ({error}): the file is damaged; save the tokenizer again or copy "
                      "it from where it was trained.") from error


def check_tokenizer_directory(directory: str) -> None:
    """The directory holds the text SentencePiece model, the unit-piece model when its vocabulary uses unit
    pieces, and JSON files that parse."""
    present = set(os.listdir(directory))
    if TEXT_MODEL_FILE not in present:
        holds = ", ".join(sorted(present)) or "nothing"
        raise OSError(f"{directory} has no {TEXT_MODEL_FILE} (it holds {holds}): it is not a saved "
                      "SpeechUnitTextTokenizer. Pass the directory its save_pretrained wrote (a trained run's "
                      "final/ holds one).")
    for name in JSON_FILES:
        if name in present:
            read_json_file(os.path.join(directory, name))
    if "tokenizer.json" in present and UNIT_PIECE_MODEL_FILE not in present:
        with open(os.path.join(directory, "tokenizer.json"), encoding="utf-8") as handle:
            if UNIT_PIECE_TOKEN in handle.read():
                raise OSError(f"{directory} has no {UNIT_PIECE_MODEL_FILE}, but its tokenizer.json holds unit pieces "
                              "(<up_i>): without it the tokenizer would load with raw units and other ids. Copy the "
                              "file back from where the tokenizer was saved.")
