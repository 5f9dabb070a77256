"""Data sets, embedded (ring, grid, digits) and on disk (image folders, torchvision sets).

Embedded sets are loaded once into memory as tensors (images as float in [-1, 1], NCHW; points as
(N, 2)), and served by :class:`BatchStream`, a seeded epoch-permutation sampler whose state is a
few integers plus a torch generator state, so checkpoints resume it exactly. Image folders and
torchvision sets load as uint8 (or, from disk, lazily) and stream through
:class:`gantk.streaming.LoaderStream`. Image folders and zip archives (``image_folder``) live in
:mod:`.imagesets`, HuggingFace data sets (``hf_dataset``) in :mod:`.hf`.

Ring and grid follow the AdvLatGAN paper's App. E.1: ring = 8 Gaussians on a circle of radius 2,
std 0.001, 12.5K samples each; grid = 25 Gaussians at (2i, 2j), i, j in -2..2, std 0.0025, 4K samples
each. The paper prints the ring means as (2cos(i pi/4), 2cos(i pi/4)), which puts every mode on
the diagonal; we read it as (2cos(i pi/4), 2sin(i pi/4)), the ring the text and figures describe.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor

from ..base.errors import DataError
from ..base.interfaces import DataInfo
from .digits_file import digits_arrays
from .imagesets import FolderParams, folder_census, folder_info, load_folder
from .streaming import check_batch_size

__all__ = ["BatchStream", "DigitsParams", "FolderParams", "GridParams", "MAX_POINTS", "RingParams",
           "SPLITS", "TORCHVISION", "TorchvisionParams", "digits_info", "folder_census",
           "folder_info", "grid_info", "grid_modes", "load_digits", "load_folder", "load_grid",
           "load_ring", "load_torchvision", "ring_info", "ring_modes", "torchvision_info"]

# ----------------------------------------------------------------------------- mixtures


MAX_POINTS = 10_000_000  # 2-D points in memory: 80 MB


def _bounded_points(params, total: int):
    if total > MAX_POINTS:
        raise ValueError(f"{total:,} points in all is more than the {MAX_POINTS:,} gantk holds in "
                         "memory; lower the mode count or per_mode")
    return params


class RingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    modes: int = Field(8, ge=1, le=10_000, description="number of Gaussians on the circle")
    radius: float = Field(2.0, gt=0)
    std: float = Field(0.001, gt=0, description="per-mode standard deviation (App. E.1)")
    per_mode: int = Field(12_500, ge=1, le=1_000_000, description="samples drawn from each Gaussian")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="seed of the drawn data set")

    @model_validator(mode="after")
    def _size(self):
        return _bounded_points(self, self.modes * self.per_mode)


class GridParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    side: int = Field(5, ge=1, le=100, description="modes per side (5 gives the 25-mode grid)")
    spacing: float = Field(2.0, gt=0)
    std: float = Field(0.0025, gt=0, description="per-mode standard deviation (App. E.1)")
    per_mode: int = Field(4_000, ge=1, le=1_000_000)
    seed: int = Field(0, ge=0, le=2**63 - 1)

    @model_validator(mode="after")
    def _size(self):
        return _bounded_points(self, self.side ** 2 * self.per_mode)


def ring_modes(p: RingParams) -> Tensor:
    angles = torch.arange(p.modes, dtype=torch.float64) * (2 * math.pi / p.modes)
    return (torch.stack([angles.cos(), angles.sin()], 1) * p.radius).float()


def grid_modes(p: GridParams) -> Tensor:
    half = (p.side - 1) / 2
    idx = torch.arange(p.side, dtype=torch.float32) - half
    gx, gy = torch.meshgrid(idx, idx, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], 1) * p.spacing


def _mixture(modes: Tensor, std: float, per_mode: int, seed: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(len(modes)).repeat_interleave(per_mode)
    x = modes[labels] + std * torch.randn(len(labels), 2, generator=g)
    return x, labels


def load_ring(p: RingParams) -> tuple[Tensor, Tensor | None]:
    x, _ = _mixture(ring_modes(p), p.std, p.per_mode, p.seed)
    return x, None


def load_grid(p: GridParams) -> tuple[Tensor, Tensor | None]:
    x, _ = _mixture(grid_modes(p), p.std, p.per_mode, p.seed)
    return x, None


def ring_info(p: RingParams) -> DataInfo:
    return DataInfo(shape=(2,), kind="points", value_range=(-p.radius - 1, p.radius + 1),
                    modes=ring_modes(p), mode_std=p.std)


def grid_info(p: GridParams) -> DataInfo:
    extent = p.spacing * (p.side - 1) / 2 + 1
    return DataInfo(shape=(2,), kind="points", value_range=(-extent, extent),
                    modes=grid_modes(p), mode_std=p.std)


# ----------------------------------------------------------------------------- digits


class DigitsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: int = Field(16, description="side in pixels: 8 (native), 16 or 32")
    stacked: bool = Field(False, description="3 channels from three random digits (1000 modes)")
    stacked_size: int = Field(10_000, ge=1, le=200_000, description="images in the stacked set")
    labelled: bool = Field(True, description="expose the 10 class labels (stacked: none)")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="seed of the stacking draw")


def _sklearn_digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's digits, read from its file without importing it (:mod:`.digits_file`)."""
    try:
        images, target = digits_arrays()
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise DataError("scikit-learn is not installed", where="data.digits",
                        fix="pip install scikit-learn (it ships the digits data).") from exc
    x = torch.tensor(images, dtype=torch.float32)[:, None] / 16.0 * 2 - 1  # 0..16 -> [-1, 1]
    return x, torch.tensor(target, dtype=torch.long)


def load_digits(p: DigitsParams) -> tuple[Tensor, Tensor | None]:
    x, y = _sklearn_digits()
    if p.resolution != 8:
        x = F.interpolate(x, size=(p.resolution, p.resolution), mode="bilinear",
                          align_corners=False).clamp(-1, 1)
    if p.stacked:
        g = torch.Generator().manual_seed(p.seed)
        idx = torch.randint(len(x), (p.stacked_size, 3), generator=g)
        x = torch.cat([x[idx[:, c]] for c in range(3)], dim=1)
        return x, None
    return x, (y if p.labelled else None)


def digits_info(p: DigitsParams) -> DataInfo:
    if p.resolution not in (8, 16, 32, 48, 64):
        raise DataError(f"digits resolution {p.resolution} is not supported", where="data.resolution",
                        fix="use 8, 16, 32, 48 or 64.")
    channels = 3 if p.stacked else 1
    labelled = p.labelled and not p.stacked
    return DataInfo(shape=(channels, p.resolution, p.resolution),
                    num_classes=10 if labelled else None, kind="image")


# ----------------------------------------------------------------------------- files on disk


class TorchvisionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    root: str = Field("data", description="where the data set's files are (or will be) stored")
    resolution: int | None = Field(None, ge=4, le=1024, description="resize to this side; default: native")
    split: str = Field("train")
    labelled: bool = Field(True, description="expose class labels (cifar10, stl10, mnist)")
    download: bool = Field(False, description="let torchvision download (needs a network)")
    limit: int | None = Field(None, ge=1, le=10_000_000)


def _resize_uint8(images: Tensor, resolution: int) -> Tensor:
    """uint8 NCHW -> uint8 NCHW at ``resolution`` (antialiased), in chunks to bound memory."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    out = []
    for chunk in images.split(4096):
        x = F.interpolate(chunk.float(), size=(resolution, resolution), mode="bilinear",
                          align_corners=False, antialias=True)
        out.append(x.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


#: name -> (torchvision class, native side, channels, classes, how to place the files by hand)
TORCHVISION = {
    "cifar10": ("CIFAR10", 32, 3, 10, "cifar-10-python.tar.gz (or its extracted "
                "cifar-10-batches-py/) in ROOT"),
    "stl10": ("STL10", 96, 3, 10, "stl10_binary/ in ROOT"),
    "mnist": ("MNIST", 28, 1, 10, "MNIST/raw/ with the four idx files in ROOT"),
    "celeba": ("CelebA", 64, 3, None, "celeba/img_align_celeba/ and celeba/list_eval_partition.txt "
               "in ROOT"),
}


def load_torchvision(name: str, p: TorchvisionParams) -> tuple[Tensor, Tensor | None]:
    import numpy as np
    import torchvision

    cls_name, native, channels, classes, where = TORCHVISION[name]
    cls = getattr(torchvision.datasets, cls_name)
    kwargs: dict[str, Any] = {"root": p.root, "download": p.download}
    if name in ("cifar10", "mnist"):
        kwargs["train"] = p.split == "train"
    else:
        kwargs["split"] = p.split
    try:
        ds = cls(**kwargs)
    except (RuntimeError, OSError) as exc:
        raise DataError(f"{name} is not available under {p.root!r} ({exc})", where="data.root",
                        fix=f"put {where.replace('ROOT', repr(p.root))}, or set "
                            "data.download = true on a machine with a network.") from None
    if name == "celeba":  # images are read lazily from disk; center-crop 140 then resize
        n = min(len(ds), p.limit or len(ds))
        from PIL import Image
        arr = []
        for i in range(n):
            im = ds[i][0].crop((19, 39, 159, 179)).resize((native, native), Image.BICUBIC)
            arr.append(np.asarray(im))
        data = torch.from_numpy(np.stack(arr)).permute(0, 3, 1, 2)
        labels = None
    else:
        raw = ds.data if not isinstance(ds.data, torch.Tensor) else ds.data.numpy()
        raw = np.asarray(raw)
        if raw.ndim == 3:  # MNIST: N, H, W
            raw = raw[:, None]
        elif raw.shape[-1] == channels:  # CIFAR: N, H, W, C
            raw = raw.transpose(0, 3, 1, 2)
        data = torch.from_numpy(np.ascontiguousarray(raw))
        targets = getattr(ds, "targets", None)
        if targets is None:
            targets = getattr(ds, "labels", None)
        labels = torch.as_tensor(np.asarray(targets), dtype=torch.long) if p.labelled else None
        if p.limit:
            data = data[: p.limit]
            labels = labels[: p.limit] if labels is not None else None
        if labels is not None and (labels < 0).any():  # STL-10's unlabelled split uses -1
            labels = None
    return _resize_uint8(data, p.resolution or native), labels


#: the splits each torchvision data set has (torchvision's own names)
SPLITS = {"cifar10": ("train", "test"), "mnist": ("train", "test"),
          "stl10": ("train", "test", "unlabeled", "train+unlabeled"),
          "celeba": ("train", "valid", "test", "all")}


def torchvision_info(name: str, p: TorchvisionParams) -> DataInfo:
    if p.split not in SPLITS[name]:
        raise DataError(f"{name} has no split {p.split[:60]!r}", where="data.split",
                        fix=f"use one of {', '.join(SPLITS[name])}.")
    _, native, channels, classes, _ = TORCHVISION[name]
    side = p.resolution or native
    labelled = p.labelled and classes is not None and not (name == "stl10" and "unlabeled" in p.split)
    return DataInfo(shape=(channels, side, side), num_classes=classes if labelled else None)


# ----------------------------------------------------------------------------- batches


class BatchStream:
    """Endless shuffled batches from in-memory tensors, resumable from a small state.

    Each epoch is one permutation drawn from a private generator; a batch never straddles two
    epochs (the last partial batch of an epoch is dropped), so the stream is a pure function of
    (seed, epoch, position)."""

    def __init__(self, x: Tensor, y: Tensor | None, *, batch_size: int, seed: int,
                 device: torch.device | str = "cpu", part: slice | None = None) -> None:
        check_batch_size(len(x), batch_size)
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.gen = torch.Generator().manual_seed(seed)
        self.epoch, self.pos = 0, 0
        self._perm = torch.randperm(len(x), generator=self.gen)
        self.part = part or slice(None)  # under torchrun: this rank's share of each global batch

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> tuple[Tensor, Tensor | None]:
        if self.pos + self.batch_size > len(self._perm):
            self.epoch += 1
            self.pos = 0
            self._perm = torch.randperm(len(self.x), generator=self.gen)
        idx = self._perm[self.pos : self.pos + self.batch_size][self.part]
        self.pos += self.batch_size
        xb = self.x[idx].to(self.device, non_blocking=True)
        yb = self.y[idx].to(self.device, non_blocking=True) if self.y is not None else None
        return xb, yb

    @property
    def num_samples(self) -> int:
        """How many samples the data set holds (one epoch)."""
        return len(self.x)

    def state_dict(self) -> dict[str, Tensor]:
        return {"gen": self.gen.get_state(), "perm": self._perm.clone(),
                "pos": torch.tensor([self.epoch, self.pos], dtype=torch.long)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.gen.set_state(state["gen"])
        self._perm = state["perm"].clone()
        self.epoch, self.pos = (int(v) for v in state["pos"].tolist())
