"""One prepared GPU check: bf16 training speed and MFU, the largest micro-batch, cached generation, HuBERT unit
extraction and the vocoder, printed as one table and written as JSON (issue 39).

Nothing in the package had run on a GPU before this script: bf16 autocast, SDPA on CUDA, the caching allocator,
CUDA graphs, HuBERT in bf16. The two speed targets a CPU cannot judge are measured here: LST's training
model-FLOPs utilisation (MFU, target >= 40% and within 10% of the Llama baseline's at `lst-350m`) and cached
speech generation at least 3x the cached Llama baseline of the same global shape at batch 1. Rows:

- training: forward + backward + AdamW step under bf16 autocast (fp32 master weights), the `lst-350m` LST and its
  Llama baseline (global 24 x 1024 over the same 8,503-entry joint vocabulary) on the same batches of three
  compositions (interleaved with 77% speech, speech-only, text-only; `bench_training_step.make_batch`), eager
  and under torch.compile (inductor; the first call per shape compiles and is not timed): tokens/s, step time,
  MFU, and LST's time ratio beside its FLOPs ratio. MFU = model FLOPs per step / step time / the device's
  dense bf16 peak (datasheet: H100 SXM and H200 989 TFLOP/s, H100 PCIe 756, H100 NVL 835, A100 312;
  `--peak_tflops` overrides; on a CPU there is none and MFU is n/a). Model FLOPs are 3x the forward matmul FLOPs
  of `lst_speech.modeling_lst.accounting` (`training.throughput.training_flops`): projections, MLPs, the
  attention scores of the keys each query may see (causal, windowed), LST's pooling and cross-attentions at its
  actual patch lengths, and the LM head; not embeddings lookups, norms, activations, softmax, the cross-entropy
  or the optimizer step.
- max_micro_batch: the largest micro-batch of 4,096-token sequences whose training step fits, for each model
  alone on the device (doubling, then bisection, catching torch.cuda.OutOfMemoryError). CUDA only.
- generation: cached greedy generation of 256 speech tokens (speech-only `ModalityLogitsProcessor`) after a
  16-token prompt ending in the speech marker, batch 1 and 8, bf16 weights: LST (its own LSTCache) against the
  Llama baseline, eager; then, on CUDA, LST's forward under torch.compile and Llama with transformers' static
  cache, compiled with CUDA graphs (mode reduce-overhead). A mode that fails is reported in its row.
- unit_extraction: a HuBERT-base-shaped model (transformers' default `HubertConfig`, random weights) in bf16, layer
  6 and 500 random centroids, on clips batched by duration (clips of one duration per batch, so the group-norm
  feature encoder sees no padding): hours of audio per second. A second row runs one clip per call, as the
  package's `HubertUnitExtractor` runs group-norm models.
- vocoder: real-time factor (seconds per second of audio) of the `v1` unit HiFi-GAN (`tiny` with `--quick`),
  10 s of 50 Hz units at batch 1, fp32.
Each row that runs records its peak memory: on CUDA `torch.cuda.max_memory_allocated` over the row (weights included), on
a CPU the process's peak resident set size sampled from /proc/self/statm every 5 ms while the row runs.

The optional parts (the one-clip HuBERT row, then, last, the micro-batch search and the compiled rows) start only
while enough of `--time_budget_s` (360 s) is left, meant to keep the whole check under 8 minutes on one H100 (it
has not run on one yet); a row that does not start says why. On a CPU the compiled rows are skipped unless `--compile on`
(`--compile_backend aot_eager` runs their code without inductor's minutes of code generation).

    python benchmarks/gpu_check.py --output gpu_check.json                       # on a CUDA device
    python benchmarks/gpu_check.py --device cpu --quick --output gpu_check.json  # tiny preset, under a minute on a CPU
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import logging
import os
import platform
import resource
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Self

import numpy as np
import torch
from bench_generation import NUM_UNITS, SPEECH_START, models, speech_prompt
from bench_training_step import make_batch
from lst_speech.modeling_lst.cache_lst import LSTCache
from lst_speech.modeling_lst.modality import ModalityLogitsProcessor
from lst_speech.modeling_lst.patching import static_patch_starts
from lst_speech.tokenization.atomic_files import write_text_atomically
from lst_speech.tokenization.vocoder import UnitHifiGanVocoder, UnitVocoderConfig
from lst_speech.training.throughput import training_flops
from transformers import CompileConfig, HubertConfig, HubertModel, LogitsProcessorList

logger = logging.getLogger("gpu_check")

COMPOSITIONS = ("interleaved", "speech-only", "text-only")
KINDS = ("training", "max_micro_batch", "generation", "unit_extraction", "vocoder")
# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's datasheets, TFLOP/s; the first name found in
# torch.cuda.get_device_name wins, so the PCIe and NVL variants come before the plain H100 (SXM).
DENSE_BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0))
FLOPS_COUNT = (
    "model FLOPs = 3 x forward matmul FLOPs (lst_speech.modeling_lst.accounting): projections, MLPs, "
    "attention scores over the keys each query may see (causal, windowed), LST's pooling and "
    "cross-attentions at its patch lengths, the LM head; not embeddings, norms, activations, softmax, "
    "the cross-entropy or the optimizer step"
)
HUBERT_LAYER, HUBERT_UNITS = 6, 500
# Compiled generation: LST's forward under torch.compile (inductor) with its own LSTCache; Llama with transformers'
# static cache, whose generate compiles the decoding step with CUDA graphs (CompileConfig's mode reduce-overhead).
COMPILED_GENERATION = {"LST": "torch.compile, LSTCache", "Llama": "static cache + CUDA graphs"}


@dataclass
class Row:
    kind: str  # one of KINDS
    model: str
    mode: str
    setting: str
    status: str = "ok"  # ok, skipped (with a reason) or failed (with the error)
    reason: str | None = None
    metrics: dict = field(default_factory=dict)
    peak_memory_mb: float | None = None


@dataclass
class Settings:
    preset: str
    train_batch: int
    train_length: int
    warmup: int
    repeats: int
    search_length: int
    search_limit: int
    new_tokens: int
    generation_batches: tuple[int, ...]
    hubert_durations: tuple[float, ...]
    hubert_clips_per_duration: int
    hubert_batch_seconds: float
    hubert_one_by_one_clips: int
    vocoder_preset: str
    vocoder_seconds: float


FULL = Settings(
    "lst-350m", 8, 4096, 2, 5, 4096, 512, 256, (1, 8), (2, 4, 6, 8, 10, 12, 14, 16), 56, 400.0, 40, "v1", 10.0
)
QUICK = Settings("tiny", 2, 128, 1, 2, 128, 4, 16, (1, 8), (0.5,), 2, 1.0, 1, "tiny", 1.0)


@dataclass
class Compiling:
    seconds: float  # what a compiled row needs left of the budget to start (its first call compiles)
    backend: str  # torch.compile's backend: inductor; aot_eager checks the compiled code paths on a CPU in seconds


class Budget:
    """Seconds left of the run's time budget, so that optional parts are skipped rather than run over."""

    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, time.perf_counter()

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)

    def refusal(self, needed: float) -> str | None:
        """Why a part that needs about `needed` seconds does not start, or None when it may."""
        if self.left() >= needed:
            return None
        left = max(self.left(), 0)
        return f"time budget: {left:.0f} s of {self.seconds:.0f} s left, this part needs about {needed:.0f} s"


class PeakMemory:
    """Peak memory while a row runs (see the module docstring for what each device measures)."""

    def __init__(self, device: torch.device):
        self.device, self.peak_bytes, self._stop = device, 0, threading.Event()

    def __enter__(self) -> Self:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            try:
                with open("/proc/self/statm") as statm:
                    self.peak_bytes = max(self.peak_bytes, int(statm.read().split()[1]) * page)
            except OSError:  # no /proc: the process's high-water mark (kilobytes on Linux, bytes on macOS)
                scale = 1 if platform.system() == "Darwin" else 1024
                self.peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
            if self._stop.wait(0.005):
                return

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()

    @property
    def megabytes(self) -> float:
        return self.peak_bytes / 2**20


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or (
        isinstance(error, RuntimeError)
        and ("out of memory" in str(error) or "CUBLAS_STATUS_ALLOC_FAILED" in str(error))
    )


def run_row(row: Row, device: torch.device, measure) -> Row:
    """Fill `row` from `measure()` (a dict of metrics) with its peak memory; an error fails the row, not the run."""
    try:
        with PeakMemory(device) as memory:
            row.metrics.update(measure())
        row.peak_memory_mb = memory.megabytes
    except Exception as error:  # the check reports what fails on a new device, and goes on
        logger.exception("%s %s %s %s failed", row.kind, row.model, row.mode, row.setting)
        row.status, row.reason = "failed", f"{type(error).__name__}: {str(error)[:500]}"
    free_memory(device)
    logger.info("%s %s %s %s: %s %s", row.kind, row.model, row.mode, row.setting, row.status, row.metrics)
    return row


def dense_bf16_peak(device: torch.device, override: float | None) -> tuple[float | None, str]:
    """(peak FLOP/s, where it comes from) for MFU."""
    if override:
        return override * 1e12, f"--peak_tflops {override:g}"
    if device.type != "cuda":
        return None, "no datasheet peak for a CPU: MFU is n/a"
    name = torch.cuda.get_device_name(device)
    for pattern, tflops in DENSE_BF16_PEAK_TFLOPS:
        if pattern in name:
            return tflops * 1e12, f"{name}: dense bf16 datasheet peak {tflops:g} TFLOP/s"
    return None, f"{name}: no datasheet peak known (pass --peak_tflops): MFU is n/a"


def training_precision(device: torch.device, model, ids: torch.Tensor):
    """(context manager factory, description): bf16 autocast where one step runs under it, else fp32, said so."""

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16)

    try:
        with autocast():
            loss = model(ids[:1, :16], labels=ids[:1, :16], use_cache=False).loss
        loss.backward()
        return autocast, "bf16 autocast, fp32 master weights"
    except Exception as error:  # every training row would fail: run them in fp32 and say why
        logger.exception("bf16 autocast failed on %s", device)
        return contextlib.nullcontext, f"fp32: bf16 autocast FAILED on {device.type} ({type(error).__name__}: {error})"
    finally:
        model.zero_grad(set_to_none=True)


def optimizer_for(model, device: torch.device) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")


def train_step(model, optimizer, ids: torch.Tensor, precision) -> None:
    optimizer.zero_grad(set_to_none=True)
    with precision():
        loss = model(ids, labels=ids, use_cache=False).loss
    loss.backward()
    optimizer.step()


def step_times(step, device: torch.device, warmup: int, repeats: int) -> tuple[float, float]:
    """(seconds of the first call, median seconds of `repeats` calls after `warmup` untimed ones)."""
    times = []
    for _ in range(warmup + repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[warmup:])


def training_rows(
    models_, optimizers, compositions, settings: Settings, device, precision, peak, mode, budget, compiling: Compiling
) -> list[Row]:
    """One row per model and composition in `mode` ("eager" or "compiled"); LST rows carry the ratios.

    `compositions` maps each composition to its batch on the device and each model's FLOPs per step."""
    rows = []
    shape = f"{settings.train_batch} x {settings.train_length}"
    runners = {
        name: (torch.compile(model, backend=compiling.backend) if mode == "compiled" else model)
        for name, model in models_.items()
    }
    for composition, (ids, flops) in compositions.items():
        pair = {}
        for name in ("LST", "Llama"):
            row = Row("training", name, mode, f"{composition}, {shape}")
            if mode == "compiled" and compiling.backend != "inductor":
                row.mode = f"compiled ({compiling.backend})"
            refusal = budget.refusal(compiling.seconds) if mode == "compiled" else None
            if refusal:
                row.status, row.reason = "skipped", refusal
                rows.append(row)
                continue

            def measure(name=name, ids=ids, flops=flops[name], composition=composition):
                first, step = step_times(
                    lambda: train_step(runners[name], optimizers[name], ids, precision),
                    device,
                    settings.warmup,
                    settings.repeats,
                )
                metrics = {
                    "composition": composition,
                    "batch": settings.train_batch,
                    "length": settings.train_length,
                    "step_s": step,
                    "first_step_s": first,
                    "tokens_per_s": ids.numel() / step,
                    "model_flops_per_step": flops,
                    "model_tflops_per_s": flops / step / 1e12,
                    "mfu": flops / step / peak if peak else None,
                }
                if mode == "compiled":
                    metrics["first_step_includes"] = "compiling"
                return metrics

            rows.append(run_row(row, device, measure))
            pair[name] = rows[-1]
        if all(r.status == "ok" for r in pair.values()) and len(pair) == 2:
            lst, llama = pair["LST"].metrics, pair["Llama"].metrics
            time_ratio = lst["step_s"] / llama["step_s"]
            flops_ratio = lst["model_flops_per_step"] / llama["model_flops_per_step"]
            lst.update(
                time_ratio_vs_llama=time_ratio,
                flops_ratio_vs_llama=flops_ratio,
                time_vs_flops_gap=time_ratio / flops_ratio - 1,
            )
    return rows


def largest_micro_batch(fits, limit: int) -> tuple[int, list[tuple[int, bool]]]:
    """The largest batch size for which `fits(size)` holds, by doubling from 1 up to `limit`, then bisection
    between the last size that fit and the first that did not. Returns it (0 if not even 1 fits) and the tries."""
    tries, fitting, failing, size = [], 0, None, 1
    while size <= limit:
        ok = fits(size)
        tries.append((size, ok))
        if not ok:
            failing = size
            break
        fitting, size = size, size * 2
    if failing is None and 0 < fitting < limit:  # doubling stepped over the limit: try the limit itself
        ok = fits(limit)
        tries.append((limit, ok))
        fitting, failing = (limit, None) if ok else (fitting, limit)
    if failing is None:
        return fitting, tries
    while failing - fitting > 1:
        middle = (fitting + failing) // 2
        ok = fits(middle)
        tries.append((middle, ok))
        fitting, failing = (middle, failing) if ok else (fitting, middle)
    return fitting, tries


def micro_batch_rows(models_, settings: Settings, device, precision, budget) -> list[Row]:
    rows = []
    setting = f"sequences of {settings.search_length} tokens, interleaved"
    for name, model in models_.items():
        row = Row("max_micro_batch", name, "eager", setting)
        if device.type != "cuda":
            row.status, row.reason = (
                "skipped",
                (
                    "needs CUDA: the search catches torch.cuda.OutOfMemoryError; on a "
                    "CPU a batch too large swaps or is killed instead of raising"
                ),
            )
            rows.append(row)
            continue
        refusal = budget.refusal(60)
        if refusal:
            row.status, row.reason = "skipped", refusal
            rows.append(row)
            continue
        others = [other for other in models_.values() if other is not model]
        for other in others:  # the model alone on the device
            other.to("cpu")
        free_memory(device)

        def measure(model=model, name=name):
            optimizer = optimizer_for(model, device)

            def fits(size: int) -> bool:
                ids = make_batch("interleaved", size, settings.search_length, torch.Generator().manual_seed(0))
                try:
                    train_step(model, optimizer, ids.to(device), precision)
                    synchronize(device)
                    ok = True
                except Exception as error:
                    if not is_out_of_memory(error):
                        raise
                    ok = False
                # outside the handler, so the error's frames no longer hold the step's tensors
                optimizer.zero_grad(set_to_none=True)
                free_memory(device)
                logger.info(
                    "%s micro-batch %d x %d: %s", name, size, settings.search_length, "fits" if ok else "out of memory"
                )
                return ok

            largest, tries = largest_micro_batch(fits, settings.search_limit)
            metrics = {
                "largest_micro_batch": largest,
                "length": settings.search_length,
                "search_limit": settings.search_limit,
                "tries": tries,
                "reached_limit": largest == settings.search_limit,
            }
            if largest:  # the peak of one step at the largest size, not of the failed tries
                torch.cuda.reset_peak_memory_stats(device)
                fits(largest)
                metrics["peak_at_largest_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
            return metrics

        rows.append(run_row(row, device, measure))
        if row.status == "ok" and "peak_at_largest_mb" in row.metrics:
            row.peak_memory_mb = row.metrics["peak_at_largest_mb"]
        model.zero_grad(set_to_none=True)
        for other in others:
            other.to(device)
    return rows


def speech_only_processor(vocab_size: int, device) -> LogitsProcessorList:
    allowed = torch.zeros(vocab_size, dtype=torch.bool, device=device)  # on the device: no copy per token
    allowed[SPEECH_START : SPEECH_START + NUM_UNITS] = True
    return LogitsProcessorList([ModalityLogitsProcessor(allowed)])


def generation_rows(models_, settings: Settings, device, modes, budget, compiling: Compiling) -> list[Row]:
    """Cached generation rows for each mode in `modes` ("eager", "compiled"); LST rows carry LST/Llama."""
    rows = []
    dtype = torch.bfloat16
    generators = {name: copy.deepcopy(model).to(dtype).eval() for name, model in models_.items()}
    speech_only = speech_only_processor(generators["LST"].config.vocab_size, device)
    for mode in modes:
        for batch in settings.generation_batches:
            prompt = speech_prompt(batch).to(device)
            setting = f"batch {batch}, {settings.new_tokens} speech tokens, bf16"
            kwargs = {"max_new_tokens": settings.new_tokens, "do_sample": False, "logits_processor": speech_only}
            pair = {}
            for name, model in generators.items():
                row = Row("generation", name, mode, setting)
                if mode == "compiled":
                    row.mode = COMPILED_GENERATION[name]
                    if compiling.backend != "inductor":
                        row.mode += f" ({compiling.backend})"
                    refusal = budget.refusal(compiling.seconds)
                    if device.type != "cuda" and name == "Llama" and not refusal:
                        refusal = "needs CUDA: transformers compiles a static-cache generate on GPUs only (CUDA graphs)"
                    if refusal:
                        row.status, row.reason = "skipped", refusal
                        rows.append(row)
                        continue

                def measure(name=name, model=model, batch=batch, prompt=prompt, mode=mode, kwargs=kwargs):
                    extra, restore = {}, None
                    if mode == "compiled" and name == "Llama":
                        extra = {
                            "cache_implementation": "static",
                            "compile_config": CompileConfig(backend=compiling.backend),
                        }
                    elif mode == "compiled":
                        restore, model.forward = model.forward, torch.compile(model.forward, backend=compiling.backend)
                    try:
                        synchronize(device)
                        start = time.perf_counter()
                        # warm-up: eager needs a few steps; compiled modes compile on the full length
                        model.generate(
                            prompt,
                            **{**kwargs, **extra, "max_new_tokens": settings.new_tokens if extra or restore else 8},
                        )
                        synchronize(device)
                        first = time.perf_counter() - start
                        start = time.perf_counter()
                        output = model.generate(prompt, **kwargs, **extra)
                        synchronize(device)
                        seconds = time.perf_counter() - start
                    finally:
                        if restore is not None:
                            model.forward = restore
                    new = output[:, prompt.shape[1] :]
                    return {
                        "batch": batch,
                        "new_tokens": settings.new_tokens,
                        "seconds": seconds,
                        "warm_up_s": first,
                        "tokens_per_s": new.numel() / seconds,
                        "ms_per_step": 1000 * seconds / settings.new_tokens,
                        "generated_tokens": int(new.shape[1]),
                        "all_speech": bool(((new >= SPEECH_START) & (new < SPEECH_START + NUM_UNITS)).all()),
                    }

                rows.append(run_row(row, device, measure))
                pair[name] = rows[-1]
            if len(pair) == 2 and all(r.status == "ok" for r in pair.values()):
                pair["LST"].metrics["speed_vs_llama"] = (
                    pair["LST"].metrics["tokens_per_s"] / pair["Llama"].metrics["tokens_per_s"]
                )
        if mode == "compiled":
            rows.append(
                Row(
                    "generation",
                    "LST",
                    "static cache + CUDA graphs",
                    f"batch 1-{max(settings.generation_batches)}",
                    status="skipped",
                    reason=(
                        f"not applicable: LST decodes with its own LSTCache (is_compileable="
                        f"{LSTCache().is_compileable}), whose shapes grow per token and whose step syncs with "
                        "the host to decide whether a patch closes; LST refuses "
                        "cache_implementation='static'"
                    ),
                )
            )
    generators.clear()
    free_memory(device)
    return rows


def hubert_batches(durations, clips_per_duration: int, batch_seconds: float, generator: torch.Generator):
    """Random 16 kHz waveforms, `clips_per_duration` per duration, in batches of one duration of at most
    `batch_seconds` of audio (at least one clip)."""
    batches = []
    for duration in durations:
        per_batch = max(1, int(batch_seconds // duration))
        for start in range(0, clips_per_duration, per_batch):
            count = min(per_batch, clips_per_duration - start)
            batches.append(torch.randn(count, int(duration * 16000), generator=generator))
    return batches


def unit_extraction_rows(settings: Settings, device, budget) -> list[Row]:
    torch.manual_seed(0)
    model = HubertModel(HubertConfig()).eval().to(device=device, dtype=torch.bfloat16)
    centroids = torch.randn(HUBERT_UNITS, model.config.hidden_size, device=device)
    batches = hubert_batches(
        settings.hubert_durations,
        settings.hubert_clips_per_duration,
        settings.hubert_batch_seconds,
        torch.Generator().manual_seed(0),
    )

    def units(waveforms: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            hidden = model(waveforms.to(device, torch.bfloat16), output_hidden_states=True).hidden_states[HUBERT_LAYER]
            hidden = hidden.float()
            distances = hidden.pow(2).sum(-1, keepdim=True) - 2 * hidden @ centroids.T + centroids.pow(2).sum(-1)
            return distances.argmin(-1).cpu()

    def measure(batches):
        units(batches[0][:1])  # warm-up
        synchronize(device)
        start = time.perf_counter()
        frames = sum(units(batch).numel() for batch in batches)
        seconds = time.perf_counter() - start
        audio_s = sum(batch.numel() for batch in batches) / 16000
        return {
            "audio_hours": audio_s / 3600,
            "seconds": seconds,
            "hours_per_s": audio_s / 3600 / seconds,
            "clips": sum(len(batch) for batch in batches),
            "calls": len(batches),
            "frames": frames,
            "layer": HUBERT_LAYER,
            "units": HUBERT_UNITS,
            "assignment": "nearest centroid on the device (the package's KMeansUnitExtractor.assign runs in numpy "
            "on the CPU after copying every hidden state back)",
        }

    batched = Row(
        "unit_extraction",
        "HuBERT-base shape",
        "bf16, batched by duration",
        f"clips of {', '.join(f'{d:g}' for d in settings.hubert_durations)} s, <= "
        f"{settings.hubert_batch_seconds:g} s of audio per batch",
    )
    rows = [run_row(batched, device, lambda: measure(batches))]
    clips = [clip[None] for batch in batches for clip in batch]
    clips = clips[:: max(1, len(clips) // settings.hubert_one_by_one_clips)][: settings.hubert_one_by_one_clips]
    single = Row(
        "unit_extraction",
        "HuBERT-base shape",
        "bf16, one clip per call",
        f"{len(clips)} of the clips, every duration (as HubertUnitExtractor runs group-norm models)",
    )
    refusal = budget.refusal(30)
    if refusal:
        single.status, single.reason = "skipped", refusal
        rows.append(single)
    else:
        rows.append(run_row(single, device, lambda: measure(clips)))
    return rows


def vocoder_row(settings: Settings, device) -> Row:
    torch.manual_seed(0)
    config = UnitVocoderConfig.from_preset(settings.vocoder_preset, num_units=NUM_UNITS)
    vocoder = UnitHifiGanVocoder(config).eval().to(device)
    frames = int(settings.vocoder_seconds * config.frame_rate)
    units = np.random.default_rng(0).integers(0, NUM_UNITS, frames)

    def measure():
        vocoder.synthesize(units[: min(50, frames)])  # warm-up; synthesize returns on the CPU (synchronised)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            waveform = vocoder.synthesize(units)
            times.append(time.perf_counter() - start)
        audio_s = waveform.size / config.sampling_rate
        seconds = statistics.median(times)
        return {
            "preset": settings.vocoder_preset,
            "audio_s": audio_s,
            "seconds": seconds,
            "rtf": seconds / audio_s,
            "parameters": sum(p.numel() for p in vocoder.parameters()),
        }

    row = run_row(
        Row(
            "vocoder",
            f"unit HiFi-GAN {settings.vocoder_preset}",
            "fp32",
            f"{settings.vocoder_seconds:g} s of units, batch 1",
        ),
        device,
        measure,
    )
    return row


def result_text(row: Row) -> str:
    m = row.metrics
    if row.status != "ok":
        return ""
    if row.kind == "training":
        mfu = f"MFU {m['mfu']:.1%}" if m["mfu"] is not None else "MFU n/a"
        text = f"{m['tokens_per_s']:,.0f} tok/s, {1000 * m['step_s']:.1f} ms/step, {mfu}"
        if "time_ratio_vs_llama" in m:
            text += f", time/FLOPs ratio {m['time_ratio_vs_llama']:.2f}/{m['flops_ratio_vs_llama']:.2f}"
        return text
    if row.kind == "max_micro_batch":
        limit = " (the search's limit)" if m["reached_limit"] else ""
        return f"{m['largest_micro_batch']} x {m['length']} tokens{limit}, {len(m['tries'])} tries"
    if row.kind == "generation":
        text = f"{m['tokens_per_s']:,.1f} tok/s, {m['ms_per_step']:.2f} ms/step"
        return text + (f", {m['speed_vs_llama']:.2f}x Llama" if "speed_vs_llama" in m else "")
    if row.kind == "unit_extraction":
        return (
            f"{m['hours_per_s']:.3f} h of audio/s ({m['audio_hours'] * 3600:,.1f} s of audio in {m['seconds']:.2f} s)"
        )
    return f"RTF {m['rtf']:.4f} ({m['seconds']:.3f} s for {m['audio_s']:g} s)"


def print_table(report: dict) -> None:
    print(
        f"\n{report['device_name']}; preset {report['preset']}; training {report['training_precision']}; "
        f"peak: {report['peak_source']}\n{report['flops_count']}\npeak memory: {report['memory_measure']}\n"
    )
    header = f"{'kind':<16}{'model':<20}{'mode':<30}{'setting':<40}{'result':<70}{'peak MiB':>10}  status"
    print(header)
    print("-" * len(header))
    for row in report["rows"]:
        row = Row(**row)
        peak = f"{row.peak_memory_mb:,.0f}" if row.peak_memory_mb is not None else ""
        status = row.status if row.status == "ok" else f"{row.status.upper()}: {row.reason}"
        print(
            f"{row.kind:<16}{row.model[:19]:<20}{row.mode[:29]:<30}{row.setting[:39]:<40}{result_text(row):<70}"
            f"{peak:>10}  {status}"
        )
    print()
    for verdict in report["verdicts"]:
        print(verdict)


def verdicts(rows: list[Row], preset: str) -> list[str]:
    """The issue's targets (set for the `lst-350m` shape), where this run measured what they need."""
    if preset != "lst-350m":
        return [f"targets: n/a at preset {preset} (they are set for lst-350m)"]
    out = []
    for composition in COMPOSITIONS:
        best = {}
        for row in rows:
            if (
                row.kind == "training"
                and row.status == "ok"
                and row.metrics["composition"] == composition
                and row.metrics["mfu"] is not None
            ):
                best[row.model] = max(best.get(row.model, 0.0), row.metrics["mfu"])
        if len(best) == 2:
            met = best["LST"] >= 0.40 and best["LST"] >= 0.9 * best["Llama"]
            out.append(
                f"training MFU, {composition}, better of eager/compiled: LST {best['LST']:.1%}, Llama "
                f"{best['Llama']:.1%} ({'target met' if met else 'TARGET MISSED'}: >= 40% and within 10%)"
            )
        else:
            out.append(f"training MFU, {composition}: n/a (no peak FLOP/s for this device, or a row failed)")
    speeds = {}
    for row in rows:
        if row.kind == "generation" and row.status == "ok" and row.metrics["batch"] == 1:
            speeds[row.model] = max(speeds.get(row.model, 0.0), row.metrics["tokens_per_s"])
    if len(speeds) == 2:
        ratio = speeds["LST"] / speeds["Llama"]
        out.append(
            f"generation, batch 1, best mode each: LST {ratio:.2f}x Llama "
            f"({'target met' if ratio >= 3 else 'TARGET MISSED'}: >= 3x)"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="The tiny preset and tiny sizes (the CPU test).")
    parser.add_argument(
        "--compile",
        choices=("auto", "on", "off"),
        default="auto",
        help="Compiled rows: auto runs them on CUDA only (inductor takes minutes on a CPU).",
    )
    parser.add_argument("--output", help="Write the table as JSON here (atomically).")
    parser.add_argument("--peak_tflops", type=float, help="The device's dense bf16 peak, TFLOP/s, for MFU.")
    parser.add_argument(
        "--time_budget_s",
        type=float,
        default=360.0,
        help="Optional parts (compiled rows, the micro-batch search, the one-clip HuBERT row) start "
        "only while enough of this is left.",
    )
    parser.add_argument(
        "--compile_seconds",
        type=float,
        default=90.0,
        help="Seconds a compiled row needs to start (its first call compiles).",
    )
    parser.add_argument(
        "--compile_backend",
        default="inductor",
        help="torch.compile's backend; aot_eager runs the compiled rows' code on a CPU without inductor's codegen.",
    )
    parser.add_argument("--train_batch", type=int, help="Override the training rows' micro-batch.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    budget = Budget(args.time_budget_s)
    compiling = Compiling(args.compile_seconds, args.compile_backend)
    device = torch.device(args.device)
    settings = QUICK if args.quick else FULL
    if args.train_batch:
        settings = replace(settings, train_batch=args.train_batch)
    compiled = args.compile == "on" or (args.compile == "auto" and device.type == "cuda")
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for what stays fp32 (the vocoder, the loss)
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
    peak, peak_source = dense_bf16_peak(device, args.peak_tflops)
    logger.info("%s; %s; settings %s", device_name, peak_source, settings)

    torch.manual_seed(0)
    lst, llama = models(settings.preset)
    models_ = {"LST": lst.train().to(device), "Llama": llama.train().to(device)}
    compositions = {}
    for composition in COMPOSITIONS:  # the same batches for both models; FLOPs at LST's static patches
        ids = make_batch(composition, settings.train_batch, settings.train_length, torch.Generator().manual_seed(0))
        mask = torch.ones_like(ids)
        starts = static_patch_starts(lst.model.speech_mask(ids), lst.config.patch_size)
        flops = {
            "LST": training_flops("lst", lst.config, mask, starts),
            "Llama": training_flops("llama", llama.config, mask, None),
        }
        compositions[composition] = (ids.to(device), flops)
    precision, precision_text = training_precision(device, models_["LST"], compositions["interleaved"][0])
    logger.info("training precision: %s", precision_text)

    # The rows every run needs first; then the optional parts while the budget lasts.
    optimizers = {name: optimizer_for(model, device) for name, model in models_.items()}
    rows = training_rows(
        models_, optimizers, compositions, settings, device, precision, peak, "eager", budget, compiling
    )
    del optimizers
    for model in models_.values():
        model.zero_grad(set_to_none=True)
    free_memory(device)
    rows += generation_rows(models_, settings, device, ["eager"], budget, compiling)
    rows += unit_extraction_rows(settings, device, budget)
    rows.append(vocoder_row(settings, device))
    rows += micro_batch_rows(models_, settings, device, precision, budget)
    if compiled:
        optimizers = {name: optimizer_for(model, device) for name, model in models_.items()}
        rows += training_rows(
            models_,
            optimizers,
            compositions,
            settings,
            device,
            precision,
            peak,
            "compiled",
            budget,
            compiling,
        )
        del optimizers
        for model in models_.values():
            model.zero_grad(set_to_none=True)
        torch._dynamo.reset()
        free_memory(device)
        rows += generation_rows(models_, settings, device, ["compiled"], budget, compiling)
    else:
        reason = (
            "needs CUDA: inductor compiles for minutes on a CPU (--compile on forces it)"
            if device.type != "cuda"
            else "--compile off"
        )
        for composition in COMPOSITIONS:
            for name in models_:
                rows.append(
                    Row(
                        "training",
                        name,
                        "compiled",
                        f"{composition}, {settings.train_batch} x {settings.train_length}",
                        "skipped",
                        reason,
                    )
                )
        for batch in settings.generation_batches:
            for name in models_:
                rows.append(
                    Row(
                        "generation",
                        name,
                        COMPILED_GENERATION[name],
                        f"batch {batch}, {settings.new_tokens} speech tokens, bf16",
                        "skipped",
                        reason,
                    )
                )

    rows.sort(key=lambda row: KINDS.index(row.kind))  # stable: within a kind, the order they ran in
    report = {
        "device": device.type,
        "device_name": device_name,
        "quick": args.quick,
        "preset": settings.preset,
        "settings": asdict(settings),
        "training_precision": precision_text,
        "peak_flops": peak,
        "peak_source": peak_source,
        "flops_count": FLOPS_COUNT,
        "memory_measure": (
            "torch.cuda.max_memory_allocated over the row, weights included"
            if device.type == "cuda"
            else "peak resident set size of the process while the row ran (/proc/self/statm, "
            "sampled every 5 ms; models and Python included)"
        ),
        "torch": torch.__version__,
        "elapsed_s": time.perf_counter() - budget.start,
        "rows": [asdict(row) for row in rows],
        "verdicts": verdicts(rows, settings.preset),
    }
    print_table(report)
    if args.output:
        write_text_atomically(args.output, json.dumps(report, indent=2, default=str) + "\n")
        logger.info("wrote %s", args.output)


if __name__ == "__main__":
    main()
