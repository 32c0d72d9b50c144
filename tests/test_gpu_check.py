"""The GPU check (`benchmarks/gpu_check.py`, issue 39) runs on a CPU with `--quick` and writes every row kind.

On a CPU the check runs at the `tiny` preset: the numbers say nothing about a GPU, but every row's code runs
(bf16 autocast training steps, the FLOPs accounting, cached generation, HuBERT in bf16, the vocoder), and the
CUDA-only parts (the out-of-memory search, compiled rows) must say why they were skipped instead of crashing.
The micro-batch search and the peak lookup are checked directly, since no GPU runs them here.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # benchmarks import each other as scripts do

import gpu_check


def finite_positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_quick_cpu_run_writes_every_row_kind(tmp_path):
    output = tmp_path / "gpu_check.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_check.py"), "--device", "cpu", "--quick", "--output", str(output)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(output.read_text())
    rows = report["rows"]
    assert {row["kind"] for row in rows} == set(gpu_check.KINDS)
    for kind in gpu_check.KINDS:  # the printed table has every kind too
        assert f"\n{kind} " in result.stdout
    assert report["device"] == "cpu" and report["preset"] == "tiny" and report["peak_flops"] is None
    assert "bf16 autocast" in report["training_precision"] or "fp32" in report["training_precision"]
    assert all(row["status"] in ("ok", "skipped") for row in rows), [r for r in rows if r["status"] == "failed"]

    def ok(kind, **match):
        found = [
            r
            for r in rows
            if r["kind"] == kind and r["status"] == "ok" and all(r["metrics"].get(k) == v for k, v in match.items())
        ]
        return found

    for row in rows:
        if row["status"] == "ok":
            assert finite_positive(row["peak_memory_mb"]), row
        else:
            assert row["reason"], row

    # training: both models, eager, on the same three compositions; LST carries the time and FLOPs ratios
    for composition in gpu_check.COMPOSITIONS:
        eager = [r for r in ok("training", composition=composition) if r["mode"] == "eager"]
        assert sorted(r["model"] for r in eager) == ["LST", "Llama"]
        for row in eager:
            metrics = row["metrics"]
            assert finite_positive(metrics["tokens_per_s"]) and finite_positive(metrics["step_s"])
            assert finite_positive(metrics["model_flops_per_step"])
            assert metrics["mfu"] is None  # no peak for a CPU
        lst = next(r for r in eager if r["model"] == "LST")["metrics"]
        llama = next(r for r in eager if r["model"] == "Llama")["metrics"]
        assert finite_positive(lst["time_ratio_vs_llama"]) and finite_positive(lst["flops_ratio_vs_llama"])
        assert lst["flops_ratio_vs_llama"] == pytest.approx(lst["model_flops_per_step"] / llama["model_flops_per_step"])
    # LST saves FLOPs on speech, not on text (each text token is its own patch)
    flops = {
        r["metrics"]["composition"]: r["metrics"]["flops_ratio_vs_llama"]
        for r in ok("training")
        if r["model"] == "LST" and r["mode"] == "eager"
    }
    assert flops["speech-only"] < flops["interleaved"] < flops["text-only"]

    # the CUDA-only parts are skipped with a reason on a CPU, not crashed
    searches = [r for r in rows if r["kind"] == "max_micro_batch"]
    assert len(searches) == 2 and all(r["status"] == "skipped" and "CUDA" in r["reason"] for r in searches)
    compiled = [r for r in rows if r["kind"] in ("training", "generation") and r["mode"] != "eager"]
    assert compiled and all(r["status"] == "skipped" and "CUDA" in r["reason"] for r in compiled)

    # generation: LST and Llama at batch 1 and 8, every new token a speech unit
    for batch in (1, 8):
        generated = ok("generation", batch=batch)
        assert sorted(r["model"] for r in generated) == ["LST", "Llama"]
        for row in generated:
            assert finite_positive(row["metrics"]["tokens_per_s"])
            assert row["metrics"]["generated_tokens"] == report["settings"]["new_tokens"]
            assert row["metrics"]["all_speech"] is True
        assert finite_positive(next(r for r in generated if r["model"] == "LST")["metrics"]["speed_vs_llama"])

    extraction = ok("unit_extraction")
    assert len(extraction) == 2 and all(finite_positive(r["metrics"]["hours_per_s"]) for r in extraction)
    assert all(r["metrics"]["frames"] > 0 for r in extraction)
    (vocoder,) = ok("vocoder")
    assert finite_positive(vocoder["metrics"]["rtf"]) and vocoder["metrics"]["audio_s"] == pytest.approx(1.0)


@pytest.mark.parametrize("capacity, limit", [(1, 512), (5, 512), (37, 512), (64, 512), (0, 8), (600, 512), (7, 6)])
def test_largest_micro_batch_doubles_then_bisects(capacity, limit):
    tried = []

    def fits(size: int) -> bool:
        tried.append(size)
        return size <= capacity

    largest, tries = gpu_check.largest_micro_batch(fits, limit)
    assert largest == min(capacity, limit)
    assert [size for size, _ in tries] == tried and all(ok == (size <= capacity) for size, ok in tries)
    assert len(tried) <= 2 * math.log2(limit) + 2  # doubling, then bisection: logarithmic in the limit


def test_dense_bf16_peak_reads_the_device_name(monkeypatch):
    cuda = torch.device("cuda")
    for name, tflops in [
        ("NVIDIA H100 80GB HBM3", 989),
        ("NVIDIA H100 PCIe", 756),
        ("NVIDIA H200", 989),
        ("NVIDIA H100 NVL", 835),
    ]:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, name=name: name)
        peak, source = gpu_check.dense_bf16_peak(cuda, None)
        assert peak == tflops * 1e12 and name in source
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some Future GPU")
    assert gpu_check.dense_bf16_peak(cuda, None)[0] is None
    assert gpu_check.dense_bf16_peak(cuda, 500.0)[0] == 500e12
    assert gpu_check.dense_bf16_peak(torch.device("cpu"), None)[0] is None


def test_cpu_peak_memory_sees_an_allocation():
    with gpu_check.PeakMemory(torch.device("cpu")) as before:
        pass
    with gpu_check.PeakMemory(torch.device("cpu")) as during:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        time.sleep(0.05)  # the sampler reads the resident size every 5 ms
        del block
    assert before.megabytes > 0 and during.megabytes >= before.megabytes + 32
