"""Micro-batches in an order that is a function of (seed, position), so a resumed run continues exactly."""

from __future__ import annotations

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
