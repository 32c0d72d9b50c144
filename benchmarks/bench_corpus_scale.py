"""How the corpus-scale paths grow: time and peak memory of unit extraction, building, packing and the first
streamed training steps over synthetic corpora spanning 100x, and a projection to 60k hours.

Each measured stage runs in its own process (its peak resident memory is its own), on corpora made here:

- extraction (MFCC on the CPU): noise-excited tones of 12 s at 16 kHz written as WAV files, extracted with
  `lst units extract --output FOLDER` (Parquet shards), 1 process, and at the largest size 2 workers at once;
- building: paired rows (KJV words, 0.2-0.4 s per word, units at `--frame_rate` Hz, word spans, 0-0.1 s
  silences) as Parquet shards, plus twice as many text lines, built with `lst data --recipe lst --streaming`
  (formats + mixing only, then formats + mixing + packing + writing the shards);
- training: `lst_speech.training.pretrain --streaming` (tiny preset) for a few steps from each size's packed shards.

Time should grow linearly with the corpus (the streaming stages) or stay flat (training's first steps), and
peak memory stay flat. Growth is judged on time per unit of corpus between sizes, and building's rate is taken
between the two largest sizes, so that fixed costs (process start, imports, loading a tokenizer) are not mistaken
for throughput or for poor scaling; the 2 extraction workers are each timed from their own start. The projection
to 60k hours multiplies the measured per-process rates; training time comes from the FLOPs accounting of
`--projection_preset` over the built data's tokens at an assumed GPU peak and MFU (stated in the output): it is a
projection, not a measurement.

    python benchmarks/bench_corpus_scale.py [--extraction_hours 0.1 1 10] [--building_hours 0.5 5 50]
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SAMPLING_RATE, CLIP_SECONDS = 16000, 12.0


def peak_mib() -> float:
    """Peak resident memory of this process and its finished children (ru_maxrss is in KiB on Linux)."""
    return max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


class ResidentMemoryWatch:
    """Samples this process's resident memory while a stage runs, so that a plateau can be told from growth:
    a streaming stage's memory should stop rising once its working set (imports, model, buffers) is in."""

    def __init__(self, interval: float = 0.2):
        self.samples: list[float] = []
        self.interval = interval
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            with open("/proc/self/status") as status:
                self.samples.append(next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024)
            time.sleep(self.interval)

    def late_growth_mib(self) -> float:
        """Peak over the second half of the run minus the peak over the first half (0 or less: flat)."""
        half = len(self.samples) // 2
        return max(self.samples[half:]) - max(self.samples[:half] or self.samples[:1])


def write_audio(folder: Path, hours: float, seed: int = 0) -> int:
    import soundfile

    rng = np.random.default_rng(seed)
    count = max(1, round(hours * 3600 / CLIP_SECONDS))
    time_axis = np.arange(int(CLIP_SECONDS * SAMPLING_RATE)) / SAMPLING_RATE
    for index in range(count):
        pitch = rng.uniform(100, 300, size=6).repeat(len(time_axis) // 6 + 1)[: len(time_axis)]
        waveform = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / SAMPLING_RATE) + 0.05 * rng.normal(size=len(time_axis))
        path = folder / f"{index // 100:04d}" / f"clip{index:06d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, waveform.astype(np.float32), SAMPLING_RATE, subtype="PCM_16")
    return count


def paired_rows(hours: float, frame_rate: int, num_units: int, seed: int = 0):
    """Aligned utterances (one KJV verse each) until `hours` of speech: generated one by one, never held."""
    from lst_speech.tokenization.corpora.sample_text import kjv_verses

    rng, frames_left = np.random.default_rng(seed), hours * 3600 * frame_rate
    for verse in itertools.cycle(kjv_verses(20_000)):
        words = verse.split()
        lengths = rng.integers(int(0.2 * frame_rate), int(0.4 * frame_rate) + 1, len(words))
        gaps = rng.integers(0, int(0.1 * frame_rate) + 1, len(words) + 1)
        starts = np.cumsum(np.r_[gaps[0], (lengths + gaps[1:])[:-1]])
        spans = np.stack([starts, starts + lengths], 1)
        frames = int(spans[-1, 1] + gaps[-1])
        yield {"text": verse, "words": words, "units": rng.integers(0, num_units, frames).tolist(),
               "word_spans": spans.tolist()}
        frames_left -= frames
        if frames_left <= 0:
            return


def write_paired_corpus(folder: Path, hours: float, frame_rate: int, num_units: int) -> dict:
    import datasets

    from lst_speech.tokenization.corpora.sample_text import kjv_verses
    from lst_speech.training.data.dataset_files import write_parquet_shards

    features = datasets.Features({"text": datasets.Value("string"),
                                  "words": datasets.Sequence(datasets.Value("string")),
                                  "units": datasets.Sequence(datasets.Value("int32")),
                                  "word_spans": datasets.Sequence(datasets.Sequence(datasets.Value("int32")))})
    index = write_parquet_shards(paired_rows(hours, frame_rate, num_units), folder / "paired", features, 5000,
                                 owner="bench_corpus_scale")
    with open(folder / "text.txt", "w") as handle:  # the recipe draws two text documents per paired one
        for verse in itertools.islice(itertools.cycle(kjv_verses(20_000)), 2 * index["rows"] + 100):
            handle.write(verse + "\n")
    return index


# Stages: each runs in a child process (`--stage NAME`) and prints one JSON line.

def extraction_job(extractor, audio, output):
    from lst_speech.tokenization.corpora.sharded_extraction import ShardedExtraction

    return ShardedExtraction(Path(extractor), [Path(audio)], Path(output), shard_size=100)


def stage_extract(arguments) -> dict:
    """The whole job (`run_extraction`: configuration check, shards, index) in this process."""
    from lst_speech.tokenization.corpora.sharded_extraction import run_extraction

    job = extraction_job(arguments.extractor, arguments.input, arguments.output)
    start = time.perf_counter()
    index = run_extraction(job, num_processes=1)
    return {"seconds": time.perf_counter() - start, "hours": index["hours"], "rows": index["rows"]}


def stage_extract_part(arguments) -> dict:
    """Process `process_index` of `num_processes`' shards (what one worker of a job does), timed once this
    process has started, so that start-up does not count against the rate."""
    job = extraction_job(arguments.extractor, arguments.input, arguments.output)
    start = time.perf_counter()
    job.run_process(arguments.process_index, arguments.num_processes)
    return {"seconds": time.perf_counter() - start}


def concurrent_extraction(folder: Path, output: Path, extractor: Path, num_processes: int) -> dict:
    """`num_processes` workers at once, each timed from its own start: the job's rate is all audio over the
    slowest worker's time. The index written at the end checks that the workers covered every shard."""
    job = extraction_job(extractor, folder, output)
    job.prepare_output()
    # Output to files, not pipes: a worker blocked on a full pipe that nobody reads yet would be timed waiting.
    logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in range(num_processes)]
    workers = [subprocess.Popen(stage_command("extract_part", input=folder, output=output, extractor=extractor,
                                              process_index=index, num_processes=num_processes),
                                stdout=stdout, stderr=stderr, text=True)
               for index, (stdout, stderr) in enumerate(logs)]
    results = []
    for worker, files in zip(workers, logs):
        returncode = worker.wait()
        for file in files:
            file.seek(0)
        results.append(stage_result("extract_part", returncode, files[0].read(), files[1].read()))
    index = job.write_index()
    return {"hours": index["hours"], "seconds": max(result["seconds"] for result in results),
            "peak_mib": max(result["peak_mib"] for result in results)}


def stage_build(arguments) -> dict:
    """`lst data --streaming` (with `--pack`), or the formatted, mixed documents only, counted."""
    from transformers import AutoTokenizer

    from lst_speech.training.cli.data import _text_source
    from lst_speech.training.cli.main import main
    from lst_speech.training.data.dataset_files import open_dataset
    from lst_speech.training.data.recipes import RECIPES, build_pretraining_data

    start = time.perf_counter()
    if arguments.pack:
        main(["data", "--recipe", "lst", "--tokenizer", arguments.tokenizer, "--paired", f"{arguments.input}/paired",
              "--text", f"{arguments.input}/text.txt", "--sequence_length", "256", "--streaming",
              "--output", arguments.output])
        rows = json.loads((Path(arguments.output) / "index.json").read_text())["rows"]
    else:
        tokenizer = AutoTokenizer.from_pretrained(arguments.tokenizer)
        mixed, _ = build_pretraining_data(RECIPES["lst"], tokenizer,
                                          paired=open_dataset(f"{arguments.input}/paired", streaming=True),
                                          text=_text_source(Path(arguments.input) / "text.txt", streaming=True),
                                          pack_sequences=False)
        rows = sum(1 for _ in mixed)
    return {"seconds": time.perf_counter() - start, "rows": rows}


def stage_train(arguments) -> dict:
    from lst_speech.training.pretrain import main

    start = time.perf_counter()
    main(["--tokenizer", arguments.tokenizer, "--train_data", arguments.input, "--streaming", "--output_dir",
          arguments.output, "--preset", "tiny", "--max_steps", str(arguments.steps), "--per_device_batch_size", "4",
          "--warmup_steps", "1", "--logging_steps", str(arguments.steps), "--save_steps", "0", "--report_to", "none"])
    return {"seconds": time.perf_counter() - start}


STAGES = {"extract": stage_extract, "extract_part": stage_extract_part, "build": stage_build, "train": stage_train}


def stage_command(stage: str, **options) -> list[str]:
    command = [sys.executable, __file__, "--stage", stage]
    for key, value in options.items():
        if value is True:
            command.append(f"--{key}")
        elif value is not None and value is not False:
            command += [f"--{key}", str(value)]
    return command


def stage_result(stage: str, returncode: int, stdout: str, stderr: str) -> dict:
    if returncode != 0:
        raise RuntimeError(f"stage {stage} failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def run_stage(stage: str, **options) -> dict:
    """One stage in a fresh process: its result, and its peak memory."""
    result = subprocess.run(stage_command(stage, **options), capture_output=True, text=True)
    return stage_result(stage, result.returncode, result.stdout, result.stderr)


def seconds_per_unit(smaller: dict, larger: dict, size_key: str) -> float:
    """Extra seconds per extra unit of corpus between two sizes: fixed costs (process start, imports, loading
    the model or tokenizer) cancel out."""
    return (larger["seconds"] - smaller["seconds"]) / (larger[size_key] - smaller[size_key])


def marginal_rate(rows: list[dict], size_key: str) -> float:
    """Corpus per second between the two largest sizes: the rate a long job runs at."""
    return 1 / seconds_per_unit(rows[-2], rows[-1], size_key)


def growth(rows: list[dict], size_key: str) -> str:
    """Seconds per unit of corpus between the two largest sizes over that between the two smallest: 1.00 is
    linear growth (time = fixed cost + rate x size), above 1 is faster than linear."""
    return f"{seconds_per_unit(rows[-2], rows[-1], size_key) / seconds_per_unit(rows[0], rows[1], size_key):.2f}"


def flops_per_token(tokenizer, packed: Path, preset: str) -> float:
    """Training FLOPs per token of `preset` on the built data (static patching, the accounting's count)."""
    import torch

    from lst_speech.modeling_lst import LSTConfig
    from lst_speech.modeling_lst.patching import static_patch_starts
    from lst_speech.training.data.dataset_files import open_dataset
    from lst_speech.training.throughput import training_flops

    config = LSTConfig.from_tokenizer(tokenizer, preset=preset)
    total_flops = total_tokens = 0.0
    for row in itertools.islice(open_dataset(str(packed), streaming=True), 200):
        modality = torch.tensor(np.asarray(row["modality_mask"]), dtype=torch.bool)[None]
        mask = torch.ones_like(modality, dtype=torch.long)
        total_flops += training_flops("lst", config, mask, static_patch_starts(modality, config.patch_size))
        total_tokens += modality.shape[1]
    return total_flops / total_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extraction_hours", type=float, nargs="+", default=[0.1, 1.0, 10.0])
    parser.add_argument("--building_hours", type=float, nargs="+", default=[0.5, 5.0, 50.0])
    parser.add_argument("--frame_rate", type=int, default=50, choices=(25, 50))
    parser.add_argument("--training_steps", type=int, default=10)
    parser.add_argument("--projection_hours", type=float, default=60_000)
    parser.add_argument("--projection_gpus", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("--projection_preset", default="lst-350m")
    parser.add_argument("--gpu_peak_tflops", type=float, default=989.0, help="assumed: H100 dense bf16")
    parser.add_argument("--assumed_mfu", type=float, default=0.4)
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder, removed at the end")
    # a child process's stage
    parser.add_argument("--stage", choices=sorted(STAGES))
    for name in ("input", "output", "extractor", "tokenizer"):
        parser.add_argument(f"--{name}")
    parser.add_argument("--process_index", type=int, default=0)
    parser.add_argument("--num_processes", type=int, default=1)
    parser.add_argument("--pack", action="store_true")
    parser.add_argument("--steps", type=int, default=10)
    arguments = parser.parse_args()
    if arguments.stage:
        import datasets

        datasets.disable_progress_bars()
        watch = ResidentMemoryWatch()
        result = STAGES[arguments.stage](arguments)
        print(json.dumps({**result, "peak_mib": peak_mib(), "late_growth_mib": watch.late_growth_mib()}))
        return
    if arguments.workdir is None:
        with tempfile.TemporaryDirectory() as workdir:
            report(arguments, Path(workdir))
    else:
        report(arguments, arguments.workdir)


def report(arguments, workdir: Path) -> None:
    import soundfile

    from lst_speech.tokenization import SpeechUnitTextTokenizer
    from lst_speech.tokenization.corpora.sample_text import kjv_verses
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

    print("## Extraction (MFCC k-means on the CPU, 1 process; 12 s clips)\n")
    print("| audio hours | files | seconds | audio hours / s | peak MiB | 2nd-half peak - 1st-half peak, MiB |\n"
          "|---|---|---|---|---|---|")
    extraction = []
    for hours in arguments.extraction_hours:
        folder = workdir / f"audio-{hours}"
        files = write_audio(folder, hours)
        extractor = workdir / "extractor"
        if not extractor.exists():
            clips = [soundfile.read(p)[0] for p in sorted(folder.rglob("*.wav"))[:3]]
            MfccUnitExtractor(num_units=100).fit(clips, SAMPLING_RATE).save_pretrained(extractor)
        result = run_stage("extract", input=folder, output=workdir / f"units-{hours}", extractor=extractor)
        extraction.append({**result, "files": files})
        print(f"| {result['hours']:.3f} | {files} | {result['seconds']:.1f} | {result['hours'] / result['seconds']:.4f} "
              f"| {result['peak_mib']:.0f} | {result['late_growth_mib']:+.0f} |")
    largest = arguments.extraction_hours[-1]
    two = concurrent_extraction(workdir / f"audio-{largest}", workdir / f"units-{largest}-2", workdir / "extractor", 2)
    one_rate, two_rate = extraction[-1]["hours"] / extraction[-1]["seconds"], two["hours"] / two["seconds"]
    print(f"\ntime per audio hour between the two largest sizes over that between the two smallest: "
          f"{growth(extraction, 'hours')} (1.00 = linear)")
    print(f"2 processes at once at {largest:g} h, each timed from its own start: {two_rate:.4f} audio hours / s, "
          f"{two_rate / one_rate:.2f}x one process (peak {two['peak_mib']:.0f} MiB of the largest process)\n")

    verses = list(kjv_verses(20_000))
    tokenizer = SpeechUnitTextTokenizer.train(verses[:5000], vocab_size=2000, model_type="unigram", num_units=500)
    tokenizer.save_pretrained(workdir / "tokenizer")
    print(f"## Building and packing (`lst data --recipe lst --streaming`, 1 process; units at {arguments.frame_rate} Hz)\n")
    print("| speech hours | paired utterances | build s | build + pack + write s | packed rows | speech hours / s "
          "| peak MiB (build, + pack) | pack: 2nd-half peak - 1st-half peak, MiB | training steps s | training peak MiB |"
          "\n|---|---|---|---|---|---|---|---|---|---|")
    building = []
    for hours in arguments.building_hours:
        corpus = workdir / f"corpus-{hours}"
        index = write_paired_corpus(corpus, hours, arguments.frame_rate, 500)
        built = run_stage("build", input=corpus, tokenizer=workdir / "tokenizer")
        packed = run_stage("build", input=corpus, tokenizer=workdir / "tokenizer", output=workdir / f"packed-{hours}",
                           pack=True)
        trained = run_stage("train", input=workdir / f"packed-{hours}", tokenizer=workdir / "tokenizer",
                            output=workdir / f"run-{hours}", steps=arguments.training_steps)
        building.append({"hours": hours, "seconds": packed["seconds"], "build_seconds": built["seconds"]})
        print(f"| {hours:g} | {index['rows']} | {built['seconds']:.1f} | {packed['seconds']:.1f} | {packed['rows']} "
              f"| {hours / packed['seconds']:.3f} | {built['peak_mib']:.0f}, {packed['peak_mib']:.0f} "
              f"| {packed['late_growth_mib']:+.0f} | {trained['seconds']:.1f} | {trained['peak_mib']:.0f} |")
    build_rate = marginal_rate(building, "hours")
    print(f"\ntime per speech hour (build + pack + write) between the two largest sizes over that between the two "
          f"smallest: {growth(building, 'hours')} (1.00 = linear); rate once started: {build_rate:.3f} speech "
          "hours / s\n")

    largest_build = arguments.building_hours[-1]
    packed_dir = workdir / f"packed-{largest_build}"
    tokens = rows_tokens(packed_dir)
    tokens_per_hour = tokens / largest_build
    flops = flops_per_token(tokenizer, packed_dir, arguments.projection_preset)
    hours = arguments.projection_hours
    print(f"## Projection to {hours:,.0f} hours (a projection from the rates above, not a measurement)\n")
    print(f"- extraction, MFCC on CPU processes: {hours / one_rate / 3600:,.0f} process-hours "
          f"(measured {one_rate:.4f} audio h/s per process; 2 processes gave {two_rate / one_rate:.2f}x)")
    print(f"- building + packing: {hours / build_rate / 3600:,.0f} process-hours "
          f"(streaming, one process per shard set)")
    print(f"- data: {tokens_per_hour * hours:.3g} tokens under the LST recipe ({tokens_per_hour:,.0f} per speech "
          f"hour, speech + the recipe's text); {arguments.projection_preset}: {flops:.3g} training FLOPs per token "
          "(accounting, static patching)")
    for gpus in arguments.projection_gpus:
        seconds = tokens_per_hour * hours * flops / (gpus * arguments.gpu_peak_tflops * 1e12 * arguments.assumed_mfu)
        print(f"- one epoch on {gpus} GPUs at an assumed {arguments.gpu_peak_tflops:g} TFLOP/s peak and "
              f"{arguments.assumed_mfu:.0%} MFU: {seconds / 3600:.3g} hours")


def rows_tokens(packed: Path) -> int:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    return sum(int(pc.sum(pc.list_value_length(pq.read_table(p, columns=["input_ids"]).column("input_ids"))).as_py())
               for p in sorted(packed.glob("data-*.parquet")))


if __name__ == "__main__":
    main()
