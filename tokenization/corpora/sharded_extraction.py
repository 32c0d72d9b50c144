"""Unit extraction as a sharded, resumable job: audio files in, Parquet shards of unit rows out.

The inputs (sorted, so every process agrees) are cut into shards of `shard_size` files; shard `k` belongs to
process `k % num_processes`, so the output is the same shard for shard whatever the number of processes.
Each shard is written under a temporary name and renamed into place (`atomic_files`), so a shard file that
exists is complete: a killed job run again skips the shards it finished and redoes the one it was writing.
`extraction_config.json` records what produced the shards (the extractor's files, the inputs, the options);
a run into a folder made with another configuration is refused instead of mixing two kinds of unit, and so is
a folder this command did not make, or one that is, holds or lies inside an input (`output_safety`).
Files that cannot be read or aligned stop the job (`on_error="stop"`) or are listed, with their path and the
reason, in the shard's `.failures.json` and in `index.json` (`on_error="skip"`): never silently dropped.

Processes come from `accelerate launch` (one shard set per process, the main process writes the index) or
from `num_processes` local worker processes (`lst units extract --num_processes N`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import multiprocessing
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ..atomic_files import atomic_path, write_text_atomically
from ..output_safety import check_apart, claim_directory

logger = logging.getLogger("lst.front_end")

CONFIG_FILE, INDEX_FILE = "extraction_config.json", "index.json"
OWNER = "lst units extract"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".g722")  # .g722: headerless G.722 (Asterisk prompts)


def unit_row(path: Path, waveform, rate: int, units, extractor, alignments, deduplicate: bool) -> dict:
    """One audio file's row from its waveform and units: `path`, `duration` (s), `units`, plus `durations` when
    deduplicating and `text` / `words` / `word_spans` (unit frames) / `character_starts` from an
    `alignment_sources` source."""
    from ..speech.audio import duration_seconds
    from ..speech.character_times import character_frames
    from ..unit_pieces import deduplicate_units

    duration = duration_seconds(waveform, rate, str(path))
    row = {"path": str(path), "duration": duration}
    if alignments is not None:
        alignment, row["text"] = alignments.alignment(path, waveform, rate)
        spans = alignment.frame_spans(extractor.frame_rate, len(units), duration)
        row["word_spans"], row["words"] = spans.tolist(), alignment.words
        if alignment.character_times is not None:
            row["character_starts"] = character_frames(alignment.character_times, spans, extractor.frame_rate)
    if deduplicate:
        units, durations = deduplicate_units(units)
        row["durations"] = durations.tolist()
    row["units"] = units.tolist()
    return row


def batch_units(extractor, waveforms: list, rate: int) -> list:
    """Units of each waveform, through the feature model in one padded batch; when the batch fails (one file too
    short, say) each file again on its own, so the error is that file's: an exception in its place."""
    try:
        return extractor.batch(waveforms, rate)
    except ValueError:
        results = []
        for waveform in waveforms:
            try:
                results.append(extractor(waveform, rate))
            except ValueError as error:
                results.append(error)
        return results


def audio_files(paths: list[Path]) -> list[Path]:
    """The audio files named, with directories (a LibriSpeech / Libri-Light tree) searched recursively; sorted
    and without repeats, so every process sees the same list."""
    found = set()
    for path in paths:
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        else:
            found.add(path)
    if not found:
        raise ValueError(f"No audio files ({', '.join(AUDIO_SUFFIXES)}) under {', '.join(map(str, paths))}.")
    return sorted(found)


@dataclasses.dataclass
class ShardedExtraction:
    """What one extraction job writes, and how; every process of the job builds the same one."""

    extractor_dir: Path
    audio: list[Path]
    output_dir: Path
    shard_size: int = 1000
    alignments: Path | None = None
    deduplicate: bool = False
    on_error: str = "stop"
    aligner: str | None = None  # run an aligner instead of reading alignments (`sources.make_aligner` names)
    transcripts: list[Path] | None = None  # where the aligner's transcripts are (default: beside the audio)
    batch_seconds: float = 0.0  # audio per padded batch through the feature model (0: one file at a time)
    dtype: str = "fp32"  # of the feature model (bf16: HuBERT on a GPU)

    def __post_init__(self):
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be at least 1 file, got {self.shard_size}.")
        if self.on_error not in ("stop", "skip"):
            raise ValueError(f"on_error must be 'stop' or 'skip', got {self.on_error!r}.")
        if self.batch_seconds < 0:
            raise ValueError(f"batch_seconds must be at least 0 (0: one file at a time), got {self.batch_seconds}.")
        if self.alignments is not None and self.aligner is not None:
            raise ValueError("Give either --alignments (files made by another aligner) or --aligner, not both.")
        if self.aligner is not None and self.transcripts is None:
            self.transcripts = [Path(p) for p in self.audio]
        check_apart(("--output", self.output_dir), ("--extractor", self.extractor_dir),
                    *(("--audio", p) for p in self.audio), ("--alignments", self.alignments),
                    *(("--transcripts", p) for p in self.transcripts or ()), file=self.output_dir.suffix == ".jsonl")
        self.audio = audio_files([Path(p) for p in self.audio])

    @functools.cached_property
    def transcript_texts(self) -> dict[str, str] | None:
        from ..alignment.sources import find_transcripts

        return None if self.aligner is None else find_transcripts([Path(p) for p in self.transcripts])

    @functools.cached_property
    def shards(self) -> list[list[Path]]:
        return [self.audio[start : start + self.shard_size] for start in range(0, len(self.audio), self.shard_size)]

    def shard_path(self, index: int) -> Path:
        return self.output_dir / f"units-{index:05d}-of-{len(self.shards):05d}.parquet"

    def configuration(self) -> dict:
        """What makes two runs' shards interchangeable: the extractor's saved files, the inputs and options."""
        digest = hashlib.sha256()
        for file in sorted(Path(self.extractor_dir).iterdir()):
            if file.is_file():
                digest.update(file.name.encode() + b"\0" + file.read_bytes())
        inputs = hashlib.sha256("\n".join(map(str, self.audio)).encode()).hexdigest()
        from ..alignment.sources import transcripts_digest

        return {"extractor_sha256": digest.hexdigest(), "inputs_sha256": inputs, "files": len(self.audio),
                "shard_size": self.shard_size, "deduplicate": self.deduplicate,
                "alignments": None if self.alignments is None else str(self.alignments), "aligner": self.aligner,
                "dtype": self.dtype, "batch_seconds": self.batch_seconds,
                "transcripts_sha256": None if self.aligner is None else transcripts_digest(self.transcript_texts)}

    def prepare_output(self) -> None:
        """Records the configuration in a new output folder, or checks it against the one already there."""
        from ..speech.unit_extraction import check_unit_extractor_directory

        check_unit_extractor_directory(self.extractor_dir)
        claim_directory(self.output_dir, OWNER)
        config_path = self.output_dir / CONFIG_FILE
        expected = self.configuration()
        if config_path.exists():
            try:
                recorded = json.loads(config_path.read_text())
            except ValueError as error:
                raise ValueError(f"{config_path} is damaged ({error}): it records which extraction wrote the shards "
                                 "beside it; write to a new --output folder.") from error
            differing = sorted(key for key in expected if recorded.get(key) != expected[key])
            if differing:
                raise ValueError(
                    f"{self.output_dir} holds shards from another extraction configuration (differs in "
                    f"{', '.join(differing)}): write to a new --output folder, or delete this one to start over.")
            return
        write_text_atomically(config_path, json.dumps(expected, indent=2))

    def schema(self) -> pa.Schema:
        """One schema for every shard (an all-failed shard included), so `load_dataset("parquet")` reads them."""
        frames = pa.list_(pa.int32())
        fields = [pa.field("path", pa.string()), pa.field("duration", pa.float64()), pa.field("units", frames)]
        if self.deduplicate:
            fields.append(pa.field("durations", frames))
        if self.alignments is not None or self.aligner is not None:
            fields += [pa.field("text", pa.string()), pa.field("words", pa.list_(pa.string())),
                       pa.field("word_spans", pa.list_(frames)),
                       pa.field("character_starts", pa.list_(frames))]  # null where the alignment has no characters
        return pa.schema(fields)

    def load_inputs(self):
        """The extractor and the alignment source (an alignment index, a CTM file or an aligner), loaded once."""
        from ..alignment.sources import alignment_source
        from ..speech.unit_extraction import load_unit_extractor

        return (load_unit_extractor(self.extractor_dir),
                alignment_source(self.alignments, self.aligner, self.transcript_texts))

    def extracted_rows(self, paths: list[Path], extractor, alignments, failures: list, progress=None):
        """The rows of `paths`, in order, the audio batched by duration (files of one sampling rate, up to
        `batch_seconds` a batch). A file that cannot be read, extracted or aligned raises (`on_error="stop"`) or
        is appended to `failures` with its reason (`"skip"`)."""
        from ..speech.audio import duration_seconds, read_audio

        def failed(path, error):
            if self.on_error == "stop":
                raise error
            failures.append({"path": str(path), "error": str(error)})
            logger.warning("skipped %s: %s", path, error)

        def finish(batch):
            units = batch_units(extractor, [waveform for _, waveform, _ in batch], batch[0][2])
            for (path, waveform, rate), result in zip(batch, units):
                try:
                    if isinstance(result, Exception):
                        raise result
                    row = unit_row(path, waveform, rate, result, extractor, alignments, self.deduplicate)
                except (ValueError, OSError) as error:
                    failed(path, error)
                    continue
                if progress is not None:
                    progress.update(row["duration"] / 3600)
                yield row

        batch, seconds = [], 0.0
        for path in paths:
            try:
                waveform, rate = read_audio(path)
                duration = duration_seconds(waveform, rate, str(path))
            except (ValueError, OSError) as error:
                failed(path, error)
                continue
            if batch and (rate != batch[0][2] or seconds + duration > self.batch_seconds):
                yield from finish(batch)
                batch, seconds = [], 0.0
            batch.append((path, waveform, rate))
            seconds += duration
        if batch:
            yield from finish(batch)

    def write_shard(self, index: int, extractor, alignments, progress) -> None:
        failures = []
        rows = list(self.extracted_rows(self.shards[index], extractor, alignments, failures, progress))
        shard = self.shard_path(index)
        # The failures first: a shard file that exists always has its failure list beside it.
        write_text_atomically(shard.with_suffix(".failures.json"), json.dumps(failures, indent=1))
        if not rows:  # every file failed: no Parquet file, which datasets' reader cannot read when it has no rows
            return
        with atomic_path(shard) as partial:
            pq.write_table(pa.Table.from_pylist(rows, schema=self.schema()), partial)

    def shard_done(self, index: int) -> bool:
        """Its Parquet file is written, or its failure list names every one of its files (no rows to write)."""
        shard = self.shard_path(index)
        if shard.exists():
            return True
        failures = shard.with_suffix(".failures.json")
        return failures.exists() and len(json.loads(failures.read_text())) == len(self.shards[index])

    def run_process(self, process_index: int = 0, num_processes: int = 1, device: str | None = None) -> list[int]:
        """Writes this process's unfinished shards, the feature model on `device` (default: this process's GPU
        when there is one); returns their indices."""
        extractor, alignments = self.load_inputs()
        extractor.to(device or default_device(process_index), self.dtype)
        mine = range(process_index, len(self.shards), num_processes)
        todo = [index for index in mine if not self.shard_done(index)]
        if len(todo) < len(mine):
            logger.info("process %d: %d of its %d shards are already written; resuming", process_index,
                        len(mine) - len(todo), len(mine))
        with tqdm(desc=f"extracting (process {process_index})", unit="h audio", position=process_index,
                  bar_format="{desc}: {n:.3f} {unit} [{elapsed}, {rate_fmt}]") as progress:
            for index in todo:
                self.write_shard(index, extractor, alignments, progress)
        return todo

    def write_index(self) -> dict:
        """`index.json` (shards, rows, hours, every failure with its reason), once all shards exist; the
        command writes the dataset card from it."""
        missing = [str(self.shard_path(i)) for i in range(len(self.shards)) if not self.shard_done(i)]
        if missing:
            raise ValueError(f"{len(missing)} shards are not written yet (first: {missing[0]}); run the "
                             "extraction again to finish them.")
        shards, failures = [], []
        for index in range(len(self.shards)):
            path = self.shard_path(index)
            failures += json.loads(path.with_suffix(".failures.json").read_text())
            if not path.exists():  # all of its files failed
                continue
            table = pq.read_table(path, columns=["duration"])
            shards.append({"file": path.name, "rows": table.num_rows,
                           "hours": sum(table.column("duration").to_pylist()) / 3600})
        index = {"shards": shards, "rows": sum(s["rows"] for s in shards),
                 "hours": sum(s["hours"] for s in shards), "failures": failures,
                 "unmatched_alignments": self.unmatched_alignments(), "configuration": self.configuration()}
        write_text_atomically(self.output_dir / INDEX_FILE, json.dumps(index, indent=2))
        if failures:
            logger.warning("%d of %d files failed and are listed in %s", len(failures), len(self.audio),
                           self.output_dir / INDEX_FILE)
        if index["unmatched_alignments"]:
            logger.warning("%d alignments match no audio file and are listed in %s", len(index["unmatched_alignments"]),
                           self.output_dir / INDEX_FILE)
        return index

    def unmatched_alignments(self) -> list[str]:
        """Alignment files (or CTM utterances) that no audio file of the job matched: audio missing from the
        input, or a naming mismatch, either way worth knowing."""
        from ..alignment.sources import alignment_source

        if self.alignments is None:
            return []
        return alignment_source(self.alignments, None, None).unmatched(self.audio)


def default_device(process_index: int) -> str:
    """Process k on GPU k mod the GPUs there are, or the CPU."""
    import torch

    return f"cuda:{process_index % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"


def run_extraction(job: ShardedExtraction, num_processes: int = 1) -> dict:
    """The whole job on this machine: under `accelerate launch` each launched process takes its shards and the
    main process writes the index; otherwise `num_processes` local workers (spawned, so no state is shared)."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    # PartialState, unlike Accelerator, does not read ACCELERATE_USE_CPU: without `cpu` a CPU-launched job
    # would see one process in each worker, and every worker would write every shard.
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available())
    if state.num_processes > 1:
        if num_processes > 1:
            raise ValueError("Under accelerate launch the processes come from the launcher; drop --num_processes.")
        if state.is_main_process:
            job.prepare_output()
        state.wait_for_everyone()
        job.run_process(state.process_index, state.num_processes, str(state.device))
        state.wait_for_everyone()
        return job.write_index() if state.is_main_process else {}
    job.prepare_output()
    if num_processes == 1:
        job.run_process()
    else:
        with multiprocessing.get_context("spawn").Pool(num_processes) as pool:
            pool.starmap(job.run_process, [(index, num_processes) for index in range(num_processes)])
    return job.write_index()
