"""A HuggingFace ``datasets`` data set from a local path: the ``hf_dataset`` data set.

``data.path`` is a folder on this machine, either what ``Dataset.save_to_disk`` (or
``DatasetDict.save_to_disk``) wrote, read with ``datasets.load_from_disk``, or a data folder
``datasets.load_dataset`` reads with one of its packaged builders (``imagefolder``, parquet,
arrow, ...; the arrow cache goes where ``datasets`` keeps it). A name on the Hub is not fetched:
gantk reads only local paths (download a Hub data set with ``datasets`` and ``save_to_disk`` it).
``datasets`` runs no code from the folder (it has dropped loading scripts).

The image column (``data.image_column``, an ``Image`` feature) is read as bytes
(``Image(decode=False)``) and decoded by :mod:`.decode`, like every image gantk reads (pixel
limit before decoding). The label column (``data.label_column``): ``"auto"`` takes ``label``
when the data set has one, ``"none"`` trains unlabelled; a ``ClassLabel`` gives its class count
and names, plain integers give max + 1 classes.

``datasets`` is imported only when this data set is used; without it (the ``hf`` extra) one
paragraph says how to install it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, BinaryIO

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from ..base.errors import DataError
from ..base.interfaces import DataInfo
from ..base.safeio import is_dir, is_regular
from .census import Census
from .decode import DEFAULT_MAX_PIXELS, PIL_HARD_LIMIT, open_regular
from .labelsfile import MAX_CLASSES
from .streaming import ImageFiles


class HFParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(..., description="a local folder: written by save_to_disk, or a data "
                      "folder load_dataset reads (imagefolder, parquet, ...)")
    split: str = Field("train", max_length=200, description="the split to train on")
    image_column: str = Field("image", max_length=200, description="the column of images")
    label_column: str = Field("auto", max_length=200, description="the column of class labels; "
                              "auto: 'label' if there is one; none: unlabelled")
    resolution: int = Field(32, ge=4, le=1024)
    channels: int = Field(3, description="1 (grayscale) or 3 (RGB)")
    limit: int | None = Field(None, ge=1, le=10_000_000, description="use at most this many rows")
    in_memory: bool = Field(True, description="decode every image once into memory (uint8); "
                            "false: the DataLoader's workers decode the rows each epoch")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, le=PIL_HARD_LIMIT,
                            description="refuse an image declaring more pixels (checked before "
                                        "decoding)")


MISSING = ("the data set 'hf_dataset' needs the HuggingFace `datasets` library, which is not "
           "installed")
MISSING_FIX = ("pip install 'gantk[hf]' (or pip install datasets); or save the images to a "
               "folder and use data.name = \"image_folder\".")


def _library() -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError(MISSING, where="data.name", fix=MISSING_FIX) from None
    return datasets


def _short(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


@functools.lru_cache(maxsize=4)
def _open(path: str, split: str) -> Any:
    """The split as a ``datasets.Dataset`` (memory-mapped; cached per process)."""
    lib = _library()
    root = Path(path).expanduser()
    if not is_dir(root):
        raise DataError(f"{path!r} is not a folder on this machine", where="data.path",
                        fix="point data.path at a folder written by save_to_disk, or a local "
                            "data folder (names on the Hub are not fetched).")
    saved = is_regular(root / "state.json") or is_regular(root / "dataset_dict.json")
    try:
        ds = lib.load_from_disk(str(root)) if saved else lib.load_dataset(str(root), split=split)
    except Exception as exc:  # datasets raises many types for a folder it cannot read
        how = "load_from_disk" if saved else "load_dataset"
        raise DataError(f"datasets.{how} cannot read {path!r} ({_short(exc)})", where="data.path",
                        fix="check the folder (and data.split); `datasets` must be able to open "
                            "it on its own.") from None
    if isinstance(ds, lib.DatasetDict):
        if split not in ds:
            raise DataError(f"the data set at {path!r} has no split {split!r}", where="data.split",
                            fix=f"use one of {', '.join(sorted(ds))}.")
        ds = ds[split]
    return ds


def _columns(p: HFParams) -> tuple[Any, str | None]:
    ds = _open(p.path, p.split)
    lib = _library()
    if p.image_column not in ds.features:
        raise DataError(f"the data set has no column {p.image_column!r} (columns: "
                        f"{', '.join(ds.column_names)})", where="data.image_column",
                        fix="set data.image_column to the column of images.")
    if not isinstance(ds.features[p.image_column], lib.Image):
        raise DataError(f"column {p.image_column!r} is {ds.features[p.image_column]!r}, not an "
                        "Image feature", where="data.image_column",
                        fix="name the column of images, or cast it: "
                            "ds.cast_column(name, datasets.Image()) before save_to_disk.")
    label = p.label_column
    if label == "auto":
        label = "label" if "label" in ds.features else None
    elif label == "none":
        label = None
    elif label not in ds.features:
        raise DataError(f"the data set has no column {label!r} (columns: "
                        f"{', '.join(ds.column_names)})", where="data.label_column",
                        fix='name the column of class labels, or set data.label_column = "none".')
    return ds, label


@functools.lru_cache(maxsize=4)
def _classes(path: str, split: str, label: str) -> tuple[int, tuple[str, ...], int]:
    """(class count, class names or (), distinct labels used) of a label column."""
    ds = _open(path, split)
    feature = ds.features[label]
    names: tuple[str, ...] = tuple(getattr(feature, "names", None) or ())
    if not names and not str(getattr(feature, "dtype", "")).startswith(("int", "uint")):
        raise DataError(f"column {label!r} is {feature!r}, not class labels",
                        where="data.label_column", fix="name a ClassLabel or integer column, or "
                                                       'set data.label_column = "none".')
    values = [int(v) for v in ds.select_columns([label]).with_format("numpy")[label]]
    if values and (min(values) < 0 or max(values) >= MAX_CLASSES):
        raise DataError(f"column {label!r} holds {min(values)}..{max(values)}; class labels must be "
                        f"0 to {MAX_CLASSES - 1}", where="data.label_column",
                        fix='clean the labels, or set data.label_column = "none".')
    count = len(names) if names else (max(values) + 1 if values else 0)
    return count, names, len(set(values))


class HFImages(ImageFiles):
    """Rows of a HuggingFace data set's image column, decoded on access (picklable: a worker
    reopens the memory-mapped arrow files)."""

    def __init__(self, ds: Any, column: str, where: str, resolution: int, channels: int, *,
                 max_pixels: int) -> None:
        super().__init__(list(range(len(ds))), resolution, channels, max_pixels=max_pixels,
                         where="data.path")
        self.ds, self.column, self.label = ds, column, where

    def open(self, i: int) -> tuple[BinaryIO, str]:
        import io

        cell = self.ds[i][self.column]
        name = f"{self.label} row {i}"
        if cell.get("bytes") is not None:
            return io.BytesIO(cell["bytes"]), name
        if cell.get("path"):
            return open_regular(cell["path"], where=name), f"{name} ({cell['path']})"
        raise DataError(f"{name} has no image (neither bytes nor a path)", where="data.path",
                        fix="remove the row or repair the data set.")


def _rows(p: HFParams) -> tuple[HFImages, Tensor | None]:
    ds, label = _columns(p)
    n = min(len(ds), p.limit or len(ds))
    if n == 0:
        raise DataError(f"the split {p.split!r} at {p.path!r} has no rows", where="data.path",
                        fix="check the data set and data.split.")
    lib = _library()
    view = ds.select(range(n)) if n < len(ds) else ds
    images = view.select_columns([p.image_column]).cast_column(p.image_column,
                                                               lib.Image(decode=False))
    labels = None
    if label is not None:
        _classes(p.path, p.split, label)  # validates the column
        labels = torch.as_tensor([int(v) for v in view.select_columns([label])
                                  .with_format("numpy")[label]], dtype=torch.long)
    return HFImages(images, p.image_column, f"{p.path}[{p.split}]", p.resolution, p.channels,
                    max_pixels=p.max_pixels), labels


def load_hf(p: HFParams) -> tuple[Tensor | ImageFiles, Tensor | None]:
    images, labels = _rows(p)
    return (images.load_all() if p.in_memory else images), labels


def hf_info(p: HFParams) -> DataInfo:
    if p.channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {p.channels}", where="data.channels",
                        fix="set data.channels = 1 or 3.")
    if not is_dir(Path(p.path).expanduser()):
        # not there: check and training say so; a run whose data has moved still samples
        return DataInfo(shape=(p.channels, p.resolution, p.resolution), kind="image")
    _, label = _columns(p)
    classes = _classes(p.path, p.split, label)[0] if label is not None else None
    return DataInfo(shape=(p.channels, p.resolution, p.resolution), num_classes=classes,
                    kind="image")


def hf_census(p: HFParams) -> Census:
    ds, label = _columns(p)
    n = min(len(ds), p.limit or len(ds))
    source = f"HuggingFace data set {p.path!r} (split {p.split!r})"
    if label is None:
        mode = "data.label_column = \"none\"" if p.label_column == "none" else "no 'label' column"
        return Census(n, None, source, mode)
    count, names, distinct = _classes(p.path, p.split, label)
    return Census(n, count, source, f"column {label!r}", list(names), distinct)
