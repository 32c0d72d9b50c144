"""FSDP (torch's fully_shard, wrapped as Accelerate wraps it) over 2 CPU processes equals one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses, several processes or whole jobs: `-m "not slow"` skips them

WORKER = Path(__file__).with_name("fsdp_worker.py")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": str(WORKER.parent.parent)}


@pytest.fixture(scope="module")
def ranks(tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdp")
    tokenizer.save_pretrained(root / "tokenizer")
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(port), str(WORKER), str(root / "tokenizer"), str(root)]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"the FSDP workers exited with {result.returncode}:\n{result.stderr[-4000:]}")
    return [json.loads((root / f"rank-{rank}.json").read_text()) for rank in (0, 1)]


@pytest.mark.parametrize("model", ["lst", "llama"])
def test_fsdp_wraps_every_block_and_matches_one_process(ranks, model):
    first, second = ranks[0][model], ranks[1][model]
    assert first["unsharded_parameters"] == [] and second["unsharded_parameters"] == []
    if model == "lst":
        # Every Llama block (encoder, global, decoder) and both cross-attentions are units of their own.
        assert first["units"] == ["model.encoder.layers.0", "model.encoder.pooling", "model.global_transformer.layers.0",
                                  "model.global_transformer.layers.1", "model.decoder.layers.0.cross_attention",
                                  "model.decoder.layers.0"]
    else:
        assert len([u for u in first["units"] if u.startswith("model.layers.")]) == 2
    assert first["losses"] == second["losses"]  # all-reduced: the global batch's mean
    assert first["losses"] == pytest.approx(first["single_process_losses"], abs=1e-5)
    assert first["losses"][-1] < first["losses"][0]
