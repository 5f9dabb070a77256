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
  checkpoint keeps is (epoch, position) of the next batch, and a resume rebuilds the loader there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ..base.errors import DataError


def to_float(x: Tensor) -> Tensor:
    """uint8 images -> float in [-1, 1] (other tensors pass through)."""
    return x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x


class ImageFiles(Dataset):
    """Image files decoded on access: centre-cropped to a square, resized, uint8 (C, H, W)."""

    def __init__(self, files: list[Path], resolution: int, channels: int) -> None:
        self.files, self.resolution, self.channels = files, resolution, channels
        self.shape = (len(files), channels, resolution, resolution)
        self.dtype = torch.uint8

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Tensor:
        from PIL import Image, UnidentifiedImageError

        f = self.files[i]
        try:
            with Image.open(f) as im:
                im = im.convert("L" if self.channels == 1 else "RGB")
                side = min(im.size)
                left, top = (im.width - side) // 2, (im.height - side) // 2
                im = im.crop((left, top, left + side, top + side)).resize(
                    (self.resolution, self.resolution), Image.BICUBIC)
                t = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot read image {str(f)!r}: {exc}", where="data.root",
                            fix="remove or repair the file.") from None
        return t.view(self.resolution, self.resolution, self.channels).permute(2, 0, 1)

    def load_all(self) -> Tensor:
        return torch.stack([self[i] for i in range(len(self))])


class _Pairs(Dataset):
    def __init__(self, x: Tensor | ImageFiles, y: Tensor | None) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.x[i], (self.y[i] if self.y is not None else torch.tensor(-1))


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
        self.data = _Pairs(x, y)
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
        return iter(DataLoader(self.data, batch_sampler=sampler, num_workers=self.workers,
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
        xb, yb = next(self._it)
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

    def state_dict(self) -> dict[str, Tensor]:
        return {"pos": torch.tensor([self.epoch, self.pos], dtype=torch.long)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if "gen" in state:  # written by the in-memory stream: a different order; start anew
            raise DataError("the checkpoint's data position was written by the in-memory stream",
                            where="checkpoint rng.data", fix="resume with the same data set.")
        self.epoch, self.pos = (int(v) for v in state["pos"].tolist())
        self._it = None
