"""Streaming image data: uint8 images (in memory or read from disk) through a DataLoader.

Image folders and torchvision sets load as uint8 (N, C, H, W), a quarter of float32's memory, or,
with ``data.in_memory = false`` (image folders), as a list of files decoded by the loader's
workers. :class:`LoaderStream` serves the same batches as :class:`gantk.data.BatchStream` would:

* the order is a pure function of (seed, epoch): each epoch is ``randperm`` from a generator
  seeded with ``seed`` and the epoch, a batch never straddles two epochs (the tail is dropped);
* under torchrun every rank takes its contiguous share of each global batch, so the ranks
  together see what one process sees;
* images are converted to float in [-1, 1] per batch on the training device; ``train.xflip``
  mirrors each image left-right with probability 1/2, drawn from a generator seeded by the
  batch's position, so the flips too are the same for any number of processes and on resume;
* ``train.workers`` worker processes gather (and, from disk, decode) the batches; the state a
  checkpoint keeps is (epoch, position) of the next batch, and a resume rebuilds the loader there;
* a worker gathers a whole batch at once; a file it cannot read comes back as data and the main
  process raises it as the same one-paragraph DataError (not a worker's traceback).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ..base.errors import DataError
from .decode import DEFAULT_MAX_PIXELS, decode, open_regular


def to_float(x: Tensor) -> Tensor:
    """uint8 images -> float in [-1, 1] (other tensors pass through)."""
    return x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x


class ImageFiles(Dataset):
    """Image files decoded on access (:mod:`.decode`): regular files only, the pixel limit
    checked before decoding, centre-cropped to a square, resized, uint8 (C, H, W).

    ``files`` are paths; subclasses read other containers by overriding :meth:`open` (a zip
    archive's members, a HuggingFace data set's rows). Picklable, so DataLoader workers decode."""

    def __init__(self, files: list, resolution: int, channels: int, *,
                 max_pixels: int = DEFAULT_MAX_PIXELS, where: str = "data.root") -> None:
        self.files, self.resolution, self.channels = files, resolution, channels
        self.max_pixels, self.where = max_pixels, where
        self.shape = (len(files), channels, resolution, resolution)
        self.dtype = torch.uint8

    def __len__(self) -> int:
        return len(self.files)

    def open(self, i: int) -> tuple[BinaryIO, str]:
        """Item ``i`` as an open binary file and the name that messages give it."""
        return open_regular(self.files[i], where=self.where), str(self.files[i])

    def __getitem__(self, i: int) -> Tensor:
        fp, name = self.open(i)
        with fp:
            return decode(fp, name, resolution=self.resolution, channels=self.channels,
                          max_pixels=self.max_pixels, where=self.where)

    def load_all(self) -> Tensor:
        out = torch.empty(self.shape, dtype=torch.uint8)
        for i in range(len(self)):
            out[i] = self[i]
        return out


@dataclass(frozen=True)
class _Failure:
    """A DataError met while a (worker) process gathered a batch, sent back as data so the main
    process raises it as the same one paragraph (a worker's exception would arrive wrapped in
    its traceback)."""

    message: str
    where: str | None
    fix: str | None


class _Batches(Dataset):
    """Whole batches by index list: (uint8 images, labels or -1), or a :class:`_Failure`."""

    def __init__(self, x: Tensor | ImageFiles, y: Tensor | None) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: list[int]) -> tuple[Tensor, Tensor] | _Failure:
        try:
            xb = self.x[idx] if isinstance(self.x, Tensor) else torch.stack([self.x[i] for i in idx])
        except DataError as exc:
            return _Failure(exc.message, exc.where, exc.fix)
        yb = self.y[idx] if self.y is not None else torch.full((len(idx),), -1)
        return xb, yb


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


class _ShareSampler(Sampler[list[int]]):
    """Endless index batches: this rank's share of each global batch, from (epoch, pos) on."""

    def __init__(self, n: int, batch_size: int, seed: int, part: slice, epoch: int, pos: int):
        self.n, self.batch_size, self.seed, self.part = n, batch_size, seed, part
        self.epoch, self.pos = epoch, pos

    def __iter__(self) -> Iterator[list[int]]:
        epoch, pos = self.epoch, self.pos
        while True:
            perm = epoch_permutation(self.n, self.seed, epoch)
            while pos + self.batch_size <= self.n:
                yield perm[pos:pos + self.batch_size][self.part].tolist()
                pos += self.batch_size
            epoch, pos = epoch + 1, 0


def check_batch_size(n: int, batch_size: int) -> None:
    """A data set must hold at least one batch (no stream drops a whole epoch silently)."""
    if n < batch_size:
        raise DataError(f"the data set has {n} samples, fewer than one batch ({batch_size})",
                        where="train.batch_size", fix=f"set train.batch_size <= {n}.")


class LoaderStream:
    """Endless batches of uint8 images through a DataLoader; resumable like ``BatchStream``."""

    def __init__(self, x: Tensor | ImageFiles, y: Tensor | None, *, batch_size: int, seed: int,
                 device: torch.device | str = "cpu", part: slice | None = None,
                 workers: int = 0, xflip: bool = False, channels_last: bool = False) -> None:
        check_batch_size(len(x), batch_size)
        self.data = _Batches(x, y)
        self.labelled = y is not None
        self.batch_size, self.seed = batch_size, seed
        self.device = torch.device(device)
        self.part = part or slice(None)
        self.workers, self.xflip, self.channels_last = workers, xflip, channels_last
        self.epoch, self.pos = 0, 0
        self._it: Iterator | None = None

    def _loader(self) -> Iterator:
        sampler = _ShareSampler(len(self.data), self.batch_size, self.seed, self.part,
                                self.epoch, self.pos)
        # the sampler yields whole index lists and the data set gathers a batch at once
        # (batch_size=None): a failure comes back as data, not as a worker's traceback
        return iter(DataLoader(self.data, sampler=sampler, batch_size=None,
                               num_workers=self.workers,
                               pin_memory=self.device.type == "cuda",
                               persistent_workers=self.workers > 0,
                               # its own generator: the workers' seeds must not draw from the
                               # global stream, or a resumed run would see other latents
                               generator=torch.Generator().manual_seed(self.seed)))

    def __iter__(self) -> LoaderStream:
        return self

    def __next__(self) -> tuple[Tensor, Tensor | None]:
        if self._it is None:
            self._it = self._loader()
        batch = next(self._it)
        if isinstance(batch, _Failure):
            raise DataError(batch.message, where=batch.where, fix=batch.fix)
        xb, yb = batch
        index = self.epoch * len(self.data) + self.pos  # where this global batch starts
        self.pos += self.batch_size
        if self.pos + self.batch_size > len(self.data):
            self.epoch, self.pos = self.epoch + 1, 0
        x = to_float(xb.to(self.device, non_blocking=True))
        if self.xflip:
            g = torch.Generator().manual_seed(self.seed * 7_919 + index)
            flip = (torch.rand(self.batch_size, generator=g) < 0.5)[self.part].to(self.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = yb.to(self.device, non_blocking=True) if self.labelled else None
        return x, y

    @property
    def num_samples(self) -> int:
        """How many samples the data set holds (one epoch)."""
        return len(self.data)

    def state_dict(self) -> dict[str, Tensor]:
        return {"pos": torch.tensor([self.epoch, self.pos], dtype=torch.long)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if "gen" in state:  # written by the in-memory stream: a different order; start anew
            raise DataError("the checkpoint's data position was written by the in-memory stream",
                            where="checkpoint rng.data", fix="resume with the same data set.")
        self.epoch, self.pos = (int(v) for v in state["pos"].tolist())
        self._it = None
