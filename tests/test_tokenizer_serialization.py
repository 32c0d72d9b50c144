"""Save / load: identical ids, AutoTokenizer, and loading where this package cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from transformers import AutoTokenizer

from lst_speech.tokenization import SpeechSegment, SpeechUnitTextTokenizer

SEGMENTS = [
    ["In the beginning <u_3> [Speech]", SpeechSegment(np.array([4, 4, 9, 1, 1, 0]), np.array([[0, 3], [3, 6]])), "end."],
    [np.array([7, 7, 7, 2]), "And God said"],
]


def encode(tokenizer):
    return tokenizer(segments=SEGMENTS, padding=True, padding_side="left")


@pytest.mark.parametrize("which", ["tokenizer", "piece_tokenizer"])
def test_save_and_load_give_identical_ids(request, tmp_path, which):
    tokenizer = request.getfixturevalue(which)
    tokenizer.save_pretrained(tmp_path)
    expected_files = {"tokenizer.json", "tokenizer_config.json", "text_spm.model"}
    if tokenizer.unit_piece_model is not None:
        expected_files.add("unit_spm.model")
    assert expected_files <= set(os.listdir(tmp_path))

    for loaded in (SpeechUnitTextTokenizer.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)):
        assert type(loaded) is SpeechUnitTextTokenizer
        original, reloaded = encode(tokenizer), encode(loaded)
        assert reloaded["input_ids"] == original["input_ids"]
        assert reloaded["modality_mask"] == original["modality_mask"]
        assert [s.tolist() for s in reloaded["word_spans"]] == [s.tolist() for s in original["word_spans"]]
        assert loaded.vocabulary_layout() == tokenizer.vocabulary_layout()
        assert (loaded.deduplicate_units, loaded.num_units) == (tokenizer.deduplicate_units, tokenizer.num_units)


def test_bos_eos_settings_survive_saving(sample_verses, tmp_path):
    tokenizer = SpeechUnitTextTokenizer.train(sample_verses[:300], vocab_size=400, num_units=8,
                                              add_bos_token=False, add_eos_token=True)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert (loaded.add_bos_token, loaded.add_eos_token) == (False, True)
    assert loaded(segments=[[1]])["input_ids"] == [401, 403, 2]


@pytest.mark.slow
def test_loads_in_a_fresh_process_without_this_package(tokenizer, tmp_path):
    """tokenizer.json alone: a generic transformers tokenizer gives the same ids for the string form.

    (Text that itself contains marker or unit-token strings is ambiguous in the string form, so the
    sequences here have none; the structured path keeps such text literal, see the encoding tests.)
    """
    tokenizer.save_pretrained(tmp_path)
    encoded = tokenizer(
        segments=[["In the beginning", SEGMENTS[0][1], "end."], SEGMENTS[1], [[5], "  spaced   out  ", [6, 7]]],
        padding=True,
    )
    rows = [
        [i for i, keep in zip(ids, mask) if keep] for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"])
    ]
    strings = [tokenizer.decode(row) for row in rows]
    script = textwrap.dedent(
        f"""
        import importlib.abc, json, sys

        class BlockProjectPackages(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {{"tokenization", "modeling_lst", "training", "evaluation", "model_cards"}}:
                    raise ImportError(f"{{name}} is blocked: this process must not use the lst package")

        sys.meta_path.insert(0, BlockProjectPackages())
        from transformers import AutoTokenizer

        loaded = AutoTokenizer.from_pretrained({str(tmp_path)!r})
        strings = json.loads({json.dumps(json.dumps(strings))})
        print(json.dumps({{"class": type(loaded).__name__,
                          "ids": [loaded(s, add_special_tokens=False)["input_ids"] for s in strings],
                          "len": len(loaded)}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["class"] == "TokenizersBackend"
    assert output["len"] == len(tokenizer)
    assert output["ids"] == rows
