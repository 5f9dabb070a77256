"""What ``gantk fid A B`` and ``gantk fid-stats SRC OUT.npz`` compare: image folders and archives,
registered data sets, and saved statistics (a run's samples are added by the command line, the
layer that may load a run).

* a ``.npz`` file holding ``mu`` and ``sigma`` (gantk's ``fid-stats``, or pytorch-fid's,
  clean-fid's or torch-fidelity's statistics files, which use the same two keys): read with
  ``allow_pickle=False``; gantk's own carry a ``meta`` record naming their feature space, which
  must be the space of the comparison;
* an existing folder or file: opened by the data layer as images (:data:`PATH_DATASETS` says
  which data set opens which path: image folders and zip archives, folders of a HuggingFace data
  set), at the images' own size (the first image's shorter side, ``--resolution`` to choose),
  centre-cropped to a square as training crops them;
* otherwise a data set name of the registry (``mnist5k``, ``digits``, ``cifar10``...) with its
  default options or ``--data-set KEY=VALUE``.

Features of folders and data sets go through the reference cache (:mod:`gantk.metrics.refstats`),
so a second comparison against the same images, with any ``--n-real``, reuses them.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..base.errors import GantkError
from .base import FeatureSet, MetricError
from .fid import gaussian_stats

#: which registered data set opens a path given to ``gantk fid``: (what the path is, data set, the
#: option naming the path); "hf": a folder a HuggingFace ``datasets`` library wrote or reads
PATH_DATASETS = (("hf", "hf_dataset", "path"), ("dir", "image_folder", "root"),
                 (".zip", "image_folder", "root"))
#: files that mark a folder written by ``datasets``' save_to_disk (a Dataset or a DatasetDict)
HF_MARKERS = ("dataset_dict.json", "state.json")
#: decoding side when a source's own image size cannot be read without decoding (HF data sets)
FALLBACK_SIDE = 299
_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
STATS_FORMAT = 1


@dataclass
class Source:
    """One side of a comparison: ``kind`` is ``stats``, ``images`` or ``run``."""

    label: str
    kind: str
    x: Any = None  # images (a tensor, or a data set decoded on access) or points
    info: Any = None
    data_name: str | None = None
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    pipeline: Any = None  # a run's Pipeline (set by the command line)
    identity: str | None = None  # what the images' features depend on (cache key); None: bytes

    def describe(self) -> str:
        if self.kind == "stats":
            n = self.meta.get("n")
            return f"statistics {self.label}" + (f" ({n} images)" if n else "")
        if self.kind == "run":
            return f"run {self.label}"
        return f"{len(self.x):,} images of {self.label}"


# ---------------------------------------------------------------------------- statistics files


def save_stats(path: str | Path, mu: np.ndarray, sigma: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write ``mu``, ``sigma`` and a ``meta`` record (JSON text) to ``path`` atomically."""

    from ..base.safeio import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64),
                 meta=np.array(json.dumps({"format": STATS_FORMAT, **meta})))
    return path


def load_stats(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(mu, sigma, meta)`` of a statistics file; a clear refusal for anything else."""

    from ..base.safeio import regular_file

    path = Path(path)
    fix = ("make it again with `gantk fid-stats SRC OUT.npz`, or give a .npz with arrays mu (d,) "
           "and sigma (d, d).")
    try:
        regular_file(path, what="statistics file")
        with np.load(path, allow_pickle=False) as f:
            if "mu" not in f.files or "sigma" not in f.files:
                raise MetricError(f"the statistics file has no mu and sigma arrays (it has "
                                  f"{', '.join(f.files[:8]) or 'nothing'})", where=str(path), fix=fix)
            mu, sigma = np.asarray(f["mu"], np.float64), np.asarray(f["sigma"], np.float64)
            meta = json.loads(str(f["meta"])) if "meta" in f.files else {}
    except GantkError as exc:
        raise MetricError(exc.message, where=str(path), fix=exc.fix or fix) from None
    except Exception as exc:  # EOFError, BadZipFile, a pickled object array, bad JSON...
        raise MetricError(f"cannot read the statistics file ({type(exc).__name__}: "
                          f"{str(exc)[:200]})", where=str(path), fix=fix) from None
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)) or not isinstance(meta, dict):
        raise MetricError(f"mu {mu.shape} and sigma {sigma.shape} are not a mean and a "
                          "covariance of one dimension", where=str(path), fix=fix)
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise MetricError("the statistics hold NaN or infinite values", where=str(path), fix=fix)
    return mu, sigma, meta


# ---------------------------------------------------------------------------- opening a source


def looks_like_run(path: Path) -> bool:
    """A gantk run directory or checkpoint file (the command line loads those)."""

    if path.is_file():
        return path.suffix == ".safetensors"
    return path.is_dir() and ((path / "spec.json").is_file() or (path / "checkpoints").is_dir())


def native_side(path: Path) -> int | None:
    """The shorter side of the first image in a folder (sorted, recursive) or a zip archive."""

    from PIL import Image

    try:
        if path.is_dir() and _path_kind(path) == "hf":
            return _hf_side(path)
        if path.is_dir():
            first = next(iter(sorted(f for f in path.rglob("*")
                                     if f.suffix.lower() in _IMAGE_EXT and f.is_file())), None)
            if first is None:
                return None
            with Image.open(first) as im:
                return min(im.size)
        with zipfile.ZipFile(path) as z:
            names = sorted(n for n in z.namelist() if Path(n).suffix.lower() in _IMAGE_EXT)
            if not names:
                return None
            with z.open(names[0]) as fh, Image.open(fh) as im:
                return min(im.size)
    except Exception:  # the data layer reports unreadable files with their path
        return None


def _hf_side(path: Path) -> int | None:
    """The shorter side of the first image of a folder ``datasets.save_to_disk`` wrote."""

    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    column = next((c for c, f in ds.features.items() if isinstance(f, datasets.Image)), None)
    return min(ds[0][column].size) if column and len(ds) else None


def _path_kind(path: Path) -> str:
    if path.is_dir():
        hf = any((path / m).is_file() for m in HF_MARKERS) or (
            any(path.glob("*.parquet")) and not any(path.glob("*.png")))
        return "hf" if hf else "dir"
    return path.suffix.lower()


def _path_dataset(path: Path, registry: Any) -> tuple[str, str]:
    """(data set, option naming the path) that opens ``path``."""

    kind = _path_kind(path)
    names = set(registry.names("dataset"))
    for what, name, option in PATH_DATASETS:
        if what == kind and name in names:
            return name, option
    if kind == "hf":  # no HF data set installed: try it as a folder of images
        return _path_dataset_dir()
    raise MetricError(f"{path} is neither a folder of images nor an archive gantk reads "
                      f"({', '.join(sorted({w for w, _, _ in PATH_DATASETS} - {'dir', 'hf'}))}), "
                      "a run or a .npz of statistics", where=str(path),
                      fix="give a folder of images, an image archive, a run directory, a "
                          "statistics .npz or a data set name.")


def _path_dataset_dir() -> tuple[str, str]:
    return next((name, option) for what, name, option in PATH_DATASETS if what == "dir")


def path_identity(path: Path, settings: dict[str, Any]) -> str:
    """What features of the images at ``path`` depend on, without reading them: every regular
    file's relative path, size and modification time (the archive's, for a file), and the
    decoding settings."""

    import hashlib
    import os

    h = hashlib.sha256(json.dumps({"path": str(path.resolve()), **settings},
                                  sort_keys=True, default=str).encode())
    entries = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in entries:
        st = os.stat(f)
        h.update(f"{f.relative_to(path) if f != path else f.name}|{st.st_size}|"
                 f"{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def open_source(text: str, registry: Any, *, resolution: int | None = None,
                options: dict[str, Any] | None = None, channels: int = 3) -> Source:
    """A statistics file, images at a path (read with ``channels``: 3 for Inception, 1 to meet
    a greyscale run or data set in a shipped classifier's space), or a registered data set (not
    a run: see module)."""

    path = Path(text).expanduser()
    if path.suffix.lower() == ".npz":
        mu, sigma, meta = load_stats(path)
        return Source(str(path), "stats", mu=mu, sigma=sigma, meta=meta)
    identity = None
    if path.exists():
        name, option = _path_dataset(path, registry)
        side = resolution or native_side(path) or FALLBACK_SIDE
        side = max(4, min(1024, side))
        params = {option: str(path), "resolution": side, "channels": channels, "in_memory": False}
        label = str(path)
        identity = path_identity(path, {"data": name, **params})
    else:
        if text not in registry.names("dataset"):
            raise MetricError(f"{text!r} is not a file, a folder or a data set name",
                              where=text,
                              fix="give a folder of images, an image archive, a run directory, a "
                                  "statistics .npz, or one of the data sets: "
                                  f"{', '.join(registry.names('dataset'))}.")
        name, params, label = text, dict(options or {}), text
        if resolution is not None:
            params["resolution"] = resolution
    entry = registry.get(name, "dataset", where=label)
    made = entry.make_params(params, where=label)
    info = entry.info(made)
    x, _ = entry.factory(made)
    if len(x) < 2:
        raise MetricError(f"{label} holds {len(x)} image(s); FID needs at least 2",
                          where=label, fix="add images.")
    return Source(label, "images", x=x, info=info, data_name=None if path.exists() else name,
                  identity=identity)


# ---------------------------------------------------------------------------- features, stats


def source_features(src: Source, net: Any, *, count: int | None, seed: int, batch_size: int,
                    cache: bool = True, wrap: Any = None) -> tuple[FeatureSet, str]:
    """``net``'s embedding of ``count`` images of a folder or data set (all when None), a seeded
    subset otherwise, through the reference cache; ``wrap(batches, label)`` may show progress."""

    from .evaluate import extract
    from .refstats import reference_features, subset_indices

    idx = subset_indices(len(src.x), count, seed)
    nets = {"embedding": net}

    def run(rows: Any) -> FeatureSet:
        batches = (rows[i:i + batch_size] for i in range(0, len(rows), batch_size))
        return extract(wrap(batches, src.label) if wrap else batches, nets)

    return reference_features(src.x, nets, run, indices=idx, cache=cache,
                              describe={"data": src.label}, source=src.identity)


def stats_of(feats: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    emb = feats.need("embedding", "fid")
    if len(emb) < 2:
        raise MetricError("FID needs at least 2 images per side", where="fid",
                          fix="give more images (--n, --n-real).")
    return gaussian_stats(emb)


def check_space(src: Source, space: str, dim: int) -> str | None:
    """Refuse statistics of another space or size; a note when a foreign file names none."""

    if src.kind != "stats":
        return None
    if len(src.mu) != dim and dim:
        raise MetricError(f"the statistics have {len(src.mu)} dimensions, the {space} features "
                          f"have {dim}", where=src.label,
                          fix="compare statistics made with the same feature net (--features).")
    theirs = src.meta.get("space")
    if theirs is None:
        return (f"{src.label} does not say which feature space it holds (not written by gantk); "
                f"it is assumed to be {space}.")
    if theirs != space:
        raise MetricError(f"the statistics are in the {theirs} feature space, the comparison in "
                          f"{space}", where=src.label,
                          fix="give --features matching the file, or make the statistics again "
                              "with `gantk fid-stats`.")
    return None
