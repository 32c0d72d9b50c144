"""Micro-batches in an order that is a function of (seed, position), so a resumed run continues exactly: from a
memory-mapped `Dataset` (`Batches`) or from a stream (`StreamingBatches`)."""

from __future__ import annotations

import itertools

import numpy as np
from accelerate.utils import gather_object
from datasets.distributed import split_dataset_by_node
from torch.utils.data import DataLoader


class Batches:
    """Micro-batches in a fixed order: epoch e is the dataset shuffled with seed + e, sharded over processes.

    `position` counts micro-batches taken, so a resumed run skips exactly what the interrupted one consumed.
    `dataset` is a `datasets.Dataset`; `args` has `per_device_batch_size` and `seed`.
    """

    def __init__(self, dataset, accelerator, collator, args, position: int = 0):
        self.dataset, self.accelerator, self.collator, self.args = dataset, accelerator, collator, args
        self.per_epoch = len(self._loader(0))
        if self.per_epoch == 0:
            raise ValueError("The training data gives no batch; it is empty.")
        self.position = position
        self._iterator = None

    def _loader(self, epoch: int):
        shuffled = self.dataset.shuffle(seed=self.args.seed + epoch)
        loader = DataLoader(shuffled, batch_size=self.args.per_device_batch_size, collate_fn=self.collator)
        return self.accelerator.prepare_data_loader(loader)

    def next(self) -> dict:
        if self._iterator is None:
            epoch, skip = divmod(self.position, self.per_epoch)
            self._iterator = iter(self.accelerator.skip_first_batches(self._loader(epoch), skip))
        try:
            batch = next(self._iterator)
        except StopIteration:
            self._iterator = iter(self._loader(self.position // self.per_epoch))
            batch = next(self._iterator)
        self.position += 1
        return batch

    def state(self) -> dict:
        return {"micro_batches": self.position}


class StreamingBatches:
    """Micro-batches from an `IterableDataset` (Parquet shards, a Hub dataset), resumed from a small state.

    Each process reads its part of the stream (`split_dataset_by_node`: whole files when the shards divide
    evenly over the processes, else every n-th row). Rows are shuffled window by window: `shuffle_buffer_size`
    rows are read and permuted by a generator seeded with (seed, epoch, process, window). datasets' own
    `shuffle(buffer_size=...)` is not used because its buffer is lost on resume (its documentation says so); here
    the state is the stream's own `state_dict()` at the window's start and the number of the window's rows
    taken, so resuming re-reads at most one window, never the consumed batches. A stream that runs out starts
    its next epoch (`set_epoch`) and the batch goes on filling: no row is dropped, no batch is short.
    `check_row` (optional) raises for a row training cannot use, before it reaches a batch.
    """

    def __init__(self, dataset, accelerator, collator, args, state: dict | None = None, check_row=None):
        self.stream = split_dataset_by_node(dataset, rank=accelerator.process_index,
                                            world_size=accelerator.num_processes)
        self.rank, self.num_processes, self.device = (accelerator.process_index, accelerator.num_processes,
                                                      accelerator.device)
        self.collator, self.args, self.check_row = collator, args, check_row
        state = dict(state or {"micro_batches": 0, "epoch": 0, "window": 0, "window_start": None, "taken": 0})
        self.position = state.pop("micro_batches")
        self.cursor = state
        self._rows = self._stream_rows()

    def _stream_rows(self):
        cursor, size = self.cursor, max(self.args.shuffle_buffer_size, 1)
        while True:
            self.stream.set_epoch(cursor["epoch"])
            if cursor["window_start"] is not None:
                self.stream.load_state_dict(cursor["window_start"])
            rows = iter(self.stream)
            while window := list(itertools.islice(rows, size)):
                order = np.arange(len(window))
                if self.args.shuffle_buffer_size > 1:
                    order = np.random.default_rng([self.args.seed, cursor["epoch"], self.rank,
                                                   cursor["window"]]).permutation(len(window))
                for index in order[cursor["taken"]:]:
                    cursor["taken"] += 1
                    yield window[index]
                cursor.update(window=cursor["window"] + 1, taken=0, window_start=self.stream.state_dict())
            if cursor["window"] == 0:
                raise ValueError(f"The training stream gives process {self.rank} (of {self.num_processes}) no rows: "
                                 "it is empty, or has fewer rows than processes.")
            cursor.update(epoch=cursor["epoch"] + 1, window=0, window_start=None, taken=0)

    def next(self) -> dict:
        rows = [next(self._rows) for _ in range(self.args.per_device_batch_size)]
        if self.check_row is not None:
            for row in rows:
                self.check_row(row)
        self.position += 1
        return {name: tensor.to(self.device) for name, tensor in self.collator(rows).items()}

    def state(self) -> dict:
        """What resumes this process's stream exactly (JSON-serialisable)."""
        return {"micro_batches": self.position, **self.cursor}


def make_batches(train_data, data_args, accelerator, collator, args, state: dict, check_row=None):
    """Map-style batches resumed at a micro-batch count, or streamed batches resumed from each process's stream
    state (a checkpoint of a streamed run holds one per process); `check_row` checks each streamed row."""
    if not data_args.streaming:
        if "streams" in state:
            raise ValueError("The checkpoint is from a run that streamed its data: resume it with --streaming.")
        return Batches(train_data, accelerator, collator, args, state.get("micro_batches", 0))
    streams = state.get("streams")
    if state and streams is None:
        raise ValueError("The checkpoint is from a run that memory-mapped its data: resume it without --streaming.")
    if streams is not None and len(streams) != accelerator.num_processes:
        raise ValueError(f"The checkpoint holds the stream positions of {len(streams)} processes and this run has "
                         f"{accelerator.num_processes}: resume a streamed run with as many processes as it had.")
    return StreamingBatches(train_data, accelerator, collator, args,
                            streams[accelerator.process_index] if streams else None, check_row)


def trainer_state(step: int, batches, accelerator) -> dict:
    """The checkpoint's trainer state: the step and where the data is (every process's stream when streaming;
    a collective call, so every process makes it)."""
    if isinstance(batches, StreamingBatches):
        return {"step": step, "micro_batches": batches.position, "streams": gather_object([batches.state()])}
    return {"step": step, **batches.state()}
