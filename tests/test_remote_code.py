"""A checkpoint saved with its code loads with trust_remote_code=True in a process that cannot import lst."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.modeling_lst.export import save_with_remote_code

BLOCK_PROJECT = """
import importlib.abc, sys
class BlockProjectPackages(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "lst_speech":
            raise ImportError(f"{name} is blocked: this process must not use the lst package")
sys.meta_path.insert(0, BlockProjectPackages())
"""


@pytest.mark.slow
def test_remote_code_checkpoint_loads_without_the_package(tokenizer, tmp_path):
    torch.manual_seed(0)
    model = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).eval()
    ids = tokenizer(segments=["In the beginning", np.arange(10) % 50])["input_ids"]
    expected = model(torch.tensor([ids])).logits[0, -1].tolist()
    save_with_remote_code(model, tmp_path, tokenizer=tokenizer)
    assert {"modeling_lst.py", "configuration_lst.py", "patching.py", "local_attention.py",
            "tokenization_speech_unit_text.py"} <= set(os.listdir(tmp_path))
    assert LSTForCausalLM.__dict__.get("_auto_class") is None  # later plain saves stay code-free

    script = BLOCK_PROJECT + textwrap.dedent(
        f"""
        import json, torch
        from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
        model = AutoModelForCausalLM.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()
        tokenizer = AutoTokenizer.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
        base = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
        string_ids = tokenizer({tokenizer.decode(ids)!r}, split_special_tokens=False, add_special_tokens=False)["input_ids"]
        print(json.dumps({{"model": type(model).__name__, "base": type(base).__name__,
                          "tokenizer": type(tokenizer).__name__, "ids": string_ids,
                          "logits": model(torch.tensor([string_ids])).logits[0, -1].tolist()}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert (output["model"], output["base"], output["tokenizer"]) == (
        "LSTForCausalLM", "LSTModel", "SpeechUnitTextTokenizer")
    assert output["ids"] == ids
    np.testing.assert_allclose(output["logits"], expected, atol=1e-5)
