"""Publishing through a real Hub-protocol server: a release and a dataset, loaded by repo id without the package.

olah (tests/local_hub.py) serves the exported folder as `org/lst-350m` and a dataset as `org/kjv-tiny` on
127.0.0.1; a process that cannot import this package loads them with the Auto classes and `load_dataset`
through `HF_ENDPOINT`, then, with the server stopped, a second one loads them again from the cache offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import datasets
import numpy as np
import pytest
import torch

from lst_speech.model_cards.dataset_cards import pretraining_data_card
from lst_speech.model_cards.release import export_release
from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor
from lst_speech.training.checkpoints import save_pretrained_atomically

from local_hub import OLAH_CLI, local_hub
from test_remote_code import BLOCK_PROJECT

pytestmark = [pytest.mark.slow,  # a Hub server in a subprocess: `-m "not slow"` skips it
              pytest.mark.skipif(not OLAH_CLI.exists(), reason=f"{OLAH_CLI} is missing: run scripts/setup_env.sh")]

LOAD = BLOCK_PROJECT + textwrap.dedent("""
    import json, sys, numpy as np, torch, datasets
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoProcessor, AutoTokenizer
    ids = torch.tensor([json.loads(sys.argv[1])])
    config = AutoConfig.from_pretrained("org/lst-350m", trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained("org/lst-350m", trust_remote_code=True)
    base = AutoModel.from_pretrained("org/lst-350m", trust_remote_code=True)
    model = AutoModelForCausalLM.from_pretrained("org/lst-350m", trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained("org/lst-350m", trust_remote_code=True)
    with torch.no_grad():
        logits = model(ids).logits[0, -1].tolist()
        generated = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0)[0].tolist()
    rows = datasets.load_dataset("org/kjv-tiny", split="train").to_list()
    print(json.dumps({"classes": [type(o).__name__ for o in (config, tokenizer, base, model, processor)],
                      "logits": logits, "generated": generated, "rows": rows}))
    """)


def run_loader(root, ids, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                                                    "HF_DATASETS_OFFLINE")}
    environment.update(HF_HOME=str(root / "hf-home"), PYTHONPATH="", **env)
    result = subprocess.run([sys.executable, "-c", LOAD, json.dumps(ids)], capture_output=True, text=True, cwd=root,
                            env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_release_and_a_dataset_load_by_repo_id_from_a_hub_server_and_then_offline(tokenizer, tmp_path):
    torch.manual_seed(0)
    model = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).eval()
    save_pretrained_atomically(model, tokenizer, tmp_path / "model", with_code=True, owner="test")
    rng = np.random.default_rng(0)
    extractor = MfccUnitExtractor(50).fit([(0.1 * rng.standard_normal(16000)).astype(np.float32)], 16000)
    extractor.save_pretrained(tmp_path / "extractor")
    release = export_release(tmp_path / "model", tmp_path / "release", tmp_path / "extractor", repo_id="org/lst-350m")
    rows = [{"input_ids": [1, 2, 3, i], "modality_mask": [0, 0, 1, 1]} for i in range(5)]
    (tmp_path / "dataset" / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(tmp_path / "dataset" / "data" / "train-00000-of-00001.parquet")
    (tmp_path / "dataset" / "README.md").write_text(str(pretraining_data_card("kjv-tiny", {"format": "test"},
                                                                               {"examples": len(rows)})))

    ids = tokenizer(segments=["In the beginning", np.arange(8) % 50])["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1].tolist()
        generated = model.generate(torch.tensor([ids]), max_new_tokens=6, do_sample=False, pad_token_id=0)[0].tolist()
    with local_hub(tmp_path / "hub") as hub:
        hub.publish("model", "org/lst-350m", release)
        hub.publish("dataset", "org/kjv-tiny", tmp_path / "dataset")
        online = run_loader(tmp_path, ids, HF_ENDPOINT=hub.endpoint)
    offline = run_loader(tmp_path, ids, HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="1")  # the server is stopped
    for loaded in (online, offline):
        assert loaded["classes"] == ["LSTConfig", "SpeechUnitTextTokenizer", "LSTModel", "LSTForCausalLM",
                                     "SpeechTextProcessor"]
        np.testing.assert_allclose(loaded["logits"], logits, atol=1e-5)
        assert loaded["generated"] == generated
        assert loaded["rows"] == rows
