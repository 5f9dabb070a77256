"""Your own images: a folder (flat, or class subfolders as labels) or a zip archive (as
StyleGAN2-ADA's ``dataset_tool`` writes it, with its ``dataset.json`` class labels), the
``image_folder`` data set.

``data.root`` is a folder or a ``.zip`` file; a zip is read in place (never extracted), each
DataLoader worker opening the archive once. Where the labels come from (``data.labels``):

* ``"auto"`` (default): a ``dataset.json`` with labels at the root of the folder or archive (the
  StyleGAN2-ADA format ``{"labels": [["00000/img00000000.png", 6], ...]}``); otherwise, for a
  folder that holds no image files itself and two or more subfolders, the subfolders are the
  classes; otherwise unlabelled ("flat": every image under the root, searched recursively);
* ``"folders"``: class subfolders with torchvision's ``ImageFolder`` semantics (its
  ``find_classes`` and ``make_dataset``: the sorted subfolder names are the classes 0, 1, ...;
  each is searched recursively; image files directly in the root are ignored); in a zip, the
  top-level folders;
* ``"dataset.json"``: the labels file, required; ``"none"``: unlabelled.

Only regular files are read: a FIFO, socket or device (or a dangling link) among the images is
skipped and named in the census line; every image is decoded by :mod:`.decode` (pixel limit
``data.max_pixels`` checked before decoding). The label count is known without decoding
(:func:`folder_info`), so a conditional backbone can be built on it.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from ..base.errors import DataError
from ..base.interfaces import DataInfo
from ..base.safeio import is_dir, is_regular
from .census import Census
from .decode import DEFAULT_MAX_PIXELS, PIL_HARD_LIMIT, open_regular
from .labelsfile import LABELS_FILE, labels_bytes, parse_labels
from .streaming import ImageFiles

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


class FolderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    root: str = Field(..., description="a folder of images (searched recursively) or a zip "
                      "archive of images (StyleGAN2-ADA dataset_tool's format)")
    resolution: int = Field(32, ge=4, le=1024)
    channels: int = Field(3, description="1 (grayscale) or 3 (RGB)")
    limit: int | None = Field(None, ge=1, le=10_000_000, description="load at most this many images")
    in_memory: bool = Field(True, description="decode every image once into memory (uint8); "
                            "false: the DataLoader's workers read the files each epoch")
    labels: Literal["auto", "folders", "dataset.json", "none"] = Field(
        "auto", description="where class labels come from: auto (dataset.json, else class "
        "subfolders, else none), folders (torchvision ImageFolder), dataset.json, none")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, le=PIL_HARD_LIMIT,
                            description="refuse an image declaring more pixels (checked before "
                                        "decoding)")


@dataclass
class Listing:
    """The images of a folder or archive, in order, with their labels."""

    root: Path
    archive: bool
    items: list  # Paths (folder) or member names (archive)
    labels: list[int] | None
    num_classes: int | None
    mode: str  # "flat", "folders" or "dataset.json"
    classes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    ignored: int = 0


def _has_ext(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXT)


def _root(p: FolderParams) -> tuple[Path, bool]:
    root = Path(p.root).expanduser()
    if is_dir(root):
        return root, False
    if not root.exists() and not root.is_symlink():
        raise DataError(f"no such folder or zip archive {str(root)!r}", where="data.root",
                        fix="point data.root at a folder of image files or a .zip of them.")
    if not is_regular(root):
        raise DataError(f"{str(root)!r} is neither a folder nor a regular file", where="data.root",
                        fix="point data.root at a folder of image files or a .zip of them.")
    return root, True


class _Archive(zipfile.ZipFile):
    """A ZipFile over a file opened by :func:`open_regular`; closing it closes the file too."""

    def __init__(self, fp: BinaryIO) -> None:
        self._raw = fp
        super().__init__(fp)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def _archive(root: Path) -> zipfile.ZipFile:
    fp = open_regular(root)
    try:
        return _Archive(fp)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        fp.close()
        raise DataError(f"{str(root)!r} is not a folder, and not a readable zip archive ({exc})",
                        where="data.root", fix="point data.root at a folder of images, or a zip "
                        "of them (StyleGAN2-ADA's dataset_tool writes one).") from None


def _members(zf: zipfile.ZipFile) -> list[str]:
    """Image members of an archive, sorted (macOS's __MACOSX/ resource forks left out)."""
    return sorted(i.filename for i in zf.infolist() if not i.is_dir() and _has_ext(i.filename)
                  and not i.filename.startswith("__MACOSX/"))


# ----------------------------------------------------------------------------- the listing


def _class_layout(root: Path) -> bool:
    """No image file directly in ``root`` and two or more subfolders: class folders."""
    subfolders = 0
    try:
        with os.scandir(root) as it:
            for entry in it:
                if _has_ext(entry.name) and not is_dir(Path(entry.path)):
                    return False
                subfolders += is_dir(Path(entry.path))
    except OSError:
        return False
    return subfolders >= 2


def _zip_classes(members: list[str]) -> list[str]:
    return sorted({m.split("/", 1)[0] for m in members if "/" in m})


def _mode(p: FolderParams, root: Path, zf: zipfile.ZipFile | None,
          labels: dict[str, int] | None) -> str:
    if p.labels == "none":
        return "flat"
    if p.labels == "dataset.json" or (p.labels == "auto" and labels is not None):
        if labels is None:
            raise DataError(f"data.labels = \"dataset.json\", but {str(root)!r} has no "
                            f"{LABELS_FILE} with labels", where="data.labels",
                            fix='add the file, or set data.labels = "auto", "folders" or "none".')
        return "dataset.json"
    if p.labels == "folders" or (zf is None and _class_layout(root)):
        return "folders"
    return "flat"


def _folder_classes(root: Path) -> tuple[list[str], dict[str, int]]:
    from torchvision.datasets.folder import find_classes

    try:
        return find_classes(str(root))
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"data.labels = \"folders\", but {str(root)!r} has no class subfolders "
                        f"({exc})", where="data.labels",
                        fix='put each class in a subfolder, or set data.labels = "none".') from None


def _plan(p: FolderParams, root: Path, zf: zipfile.ZipFile | None
          ) -> tuple[str, dict[str, int] | None, list[str], str]:
    """(mode, the dataset.json table, the class names, where the labels file is), without
    listing every image: what :func:`folder_info` needs."""
    where = f"{root}:{LABELS_FILE}" if zf is not None else str(root / LABELS_FILE)
    raw = labels_bytes(root, zf) if p.labels in ("auto", "dataset.json") else None
    table = parse_labels(raw, where) if raw is not None else None
    mode = _mode(p, root, zf, table)
    classes: list[str] = []
    if mode == "folders":
        classes = _zip_classes(_members(zf)) if zf is not None else _folder_classes(root)[0]
        if not classes:
            raise DataError(f"data.labels = \"folders\", but {str(root)!r} has no folders of "
                            "images", where="data.labels",
                            fix='put each class in a folder, or set data.labels = "none".')
    return mode, table, classes, where


def list_images(p: FolderParams) -> Listing:
    """Every image of ``data.root`` (not decoded), its label and how the labels were found."""
    root, archive = _root(p)
    zf = _archive(root) if archive else None
    try:
        mode, table, classes, where = _plan(p, root, zf)
        skipped: list[str] = []
        labels: list[int] | None = None
        ignored = 0
        if archive:
            items: list = _members(zf)
            names = items
        elif mode == "folders":
            items, labels, classes, ignored = _class_folders(root, skipped)
            names = None
        else:
            found = sorted(f for f in root.rglob("*") if _has_ext(f.name))
            items = [f for f in found if is_regular(f)]
            skipped = [str(f.relative_to(root)) for f in found if not is_regular(f)]
            names = [f.relative_to(root).as_posix() for f in items]
    finally:
        if zf is not None:
            zf.close()
    if archive and mode == "folders":
        index = {c: i for i, c in enumerate(classes)}
        ignored = sum("/" not in m for m in items)
        items = [m for m in items if "/" in m]
        labels = [index[m.split("/", 1)[0]] for m in items]
    if mode == "dataset.json":
        missing = [n for n in names if n not in table]
        if missing:
            raise DataError(f"{len(missing):,} of {len(names):,} images have no label in "
                            f"{LABELS_FILE} (first: {', '.join(missing[:3])})", where=where,
                            fix='label every image, or set data.labels = "none".')
        labels = [table[n] for n in names]
    num_classes = _count_classes(mode, classes, table)
    if p.limit:
        items = items[: p.limit]
        labels = labels[: p.limit] if labels is not None else None
    if not items:
        raise DataError(f"no image files ({', '.join(IMAGE_EXT)}) in {str(root)!r}",
                        where="data.root", fix="check the folder or archive, or its permissions.")
    return Listing(root, archive, items, labels, num_classes, mode, classes, skipped, ignored)


def _count_classes(mode: str, classes: list[str], table: dict[str, int] | None) -> int | None:
    if mode == "folders":
        return len(classes)
    if mode == "dataset.json":
        return max(table.values()) + 1 if table else None
    return None


def _class_folders(root: Path, skipped: list[str]) -> tuple[list, list[int], list[str], int]:
    """torchvision's ImageFolder listing: sorted class folders, each searched recursively."""
    from torchvision.datasets.folder import make_dataset

    classes, class_to_idx = _folder_classes(root)

    def valid(path: str) -> bool:
        if not _has_ext(path):
            return False
        if not is_regular(Path(path)):
            skipped.append(os.path.relpath(path, root))
            return False
        return True

    samples = make_dataset(str(root), class_to_idx, is_valid_file=valid, allow_empty=True)
    empty = sorted(set(classes) - {classes[c] for _, c in samples})
    if empty:
        raise DataError(f"class folder(s) {', '.join(repr(c) for c in empty[:5])} hold no images; "
                        f"with class folders (torchvision's ImageFolder) every subfolder of "
                        f"{str(root)!r} is a class", where="data.labels",
                        fix='remove the empty folder(s), or set data.labels = "none" to train '
                            'on all the images unlabelled.')
    with os.scandir(root) as it:
        ignored = sum(1 for e in it if _has_ext(e.name) and not is_dir(Path(e.path)))
    return [Path(f) for f, _ in samples], [c for _, c in samples], classes, ignored


# ----------------------------------------------------------------------------- the data set


class ZipImages(ImageFiles):
    """Members of a zip archive, decoded on access; each process opens the archive once."""

    def __init__(self, archive: Path, members: list[str], resolution: int, channels: int, *,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        super().__init__(members, resolution, channels, max_pixels=max_pixels)
        self.archive = archive
        self._zip: tuple[int, zipfile.ZipFile] | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None}  # a worker opens its own handle

    def open(self, i: int) -> tuple[BinaryIO, str]:
        member = self.files[i]
        name = f"{self.archive}:{member}"
        if self._zip is None or self._zip[0] != os.getpid():
            self._zip = (os.getpid(), _archive(self.archive))
        zf = self._zip[1]
        try:
            info = zf.getinfo(member)
            if info.file_size > 4 * self.max_pixels + 2**20:  # no image needs more bytes
                raise DataError(f"the member is {info.file_size:,} bytes uncompressed, more than "
                                f"an image within data.max_pixels needs", where=name,
                                fix="remove it from the archive, or raise data.max_pixels.")
            return zf.open(info), name
        except (KeyError, zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
            raise DataError(f"cannot read {name!r} from the archive ({exc})", where="data.root",
                            fix="repair or rebuild the archive.") from None


def _images(p: FolderParams, listing: Listing) -> ImageFiles:
    if listing.archive:
        return ZipImages(listing.root, listing.items, p.resolution, p.channels,
                         max_pixels=p.max_pixels)
    return ImageFiles(listing.items, p.resolution, p.channels, max_pixels=p.max_pixels)


def load_folder(p: FolderParams) -> tuple[Tensor | ImageFiles, Tensor | None]:
    listing = list_images(p)
    images = _images(p, listing)  # centre crop to a square, then resize
    labels = torch.tensor(listing.labels, dtype=torch.long) if listing.labels is not None else None
    return (images.load_all() if p.in_memory else images), labels


def _check_channels(p: FolderParams) -> None:
    if p.channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {p.channels}", where="data.channels",
                        fix="set data.channels = 1 or 3.")


def folder_info(p: FolderParams) -> DataInfo:
    """Shape and label count, read without decoding: flat needs no file at all (so a run on a
    folder that has moved can still be sampled); labels come from the folder or archive."""
    _check_channels(p)
    shape = (p.channels, p.resolution, p.resolution)
    if p.labels == "none":
        return DataInfo(shape=shape, kind="image")
    if p.labels == "auto" and not (is_dir(Path(p.root).expanduser())
                                   or is_regular(Path(p.root).expanduser())):
        return DataInfo(shape=shape, kind="image")  # not there: training says so
    root, archive = _root(p)
    zf = _archive(root) if archive else None
    try:
        mode, table, classes, _ = _plan(p, root, zf)
    finally:
        if zf is not None:
            zf.close()
    return DataInfo(shape=shape, num_classes=_count_classes(mode, classes, table), kind="image")


MODES = {"flat": "", "folders": "class folders (torchvision's ImageFolder: sorted names)",
         "dataset.json": LABELS_FILE}


def folder_census(p: FolderParams) -> Census:
    listing = list_images(p)
    source = f"{'zip archive' if listing.archive else 'folder'} {str(listing.root)!r}"
    mode = MODES[listing.mode]
    if listing.mode == "flat":
        mode = ("data.labels = \"none\"" if p.labels == "none" else
                "no dataset.json labels and no class subfolders; data.labels = \"folders\" "
                "reads subfolders as classes" if not listing.archive else "no dataset.json labels")
    distinct = len(set(listing.labels)) if listing.labels is not None else None
    return Census(len(listing.items), listing.num_classes, source, mode,
                  listing.classes, distinct, listing.skipped, listing.ignored)
