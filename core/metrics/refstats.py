"""Cached reference features: each real image's features computed once per (data, feature net)
and reused by every later evaluation, whatever its ``n_real`` or seed.

The cache is a folder of ``.npz`` files (numpy arrays only, read with ``allow_pickle=False``, so a
file in it can never make gantk execute code) at ``$GANTK_CACHE_DIR/ref_stats``, else
``$XDG_CACHE_HOME/gantk/ref_stats``, else ``~/.cache/gantk/ref_stats``. A file's name is the
sha256 of everything its features depend on:

* the real data itself (the bytes of the whole reference tensor, or for files read from disk
  their paths, sizes and modification times, with the decoding settings): the data set, its
  options and its split change it, and so does a changed file on disk;
* each feature net's identity (its space and the sha256 of its weights);
* which inputs were extracted (embedding, class probabilities, digit probabilities).

The file holds the features of the rows computed so far (``index``, sorted, and one array per
input aligned with it). A request for a subset (``n_real`` rows drawn with a seed) computes only
the rows the file lacks and stores the union, so a larger ``--n`` extends the file and a smaller
one or another seed reads what is there. Writes go to a temporary file renamed into place.

A file that cannot be read or does not hold what its name promises (0 bytes, cut short, not a zip,
arrays of the wrong length) is reported in one line and recomputed; deleting the folder is always
safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..base.errors import GantkError
from ..base.safeio import atomic_path
from .base import FeatureSet

_INPUTS = ("embedding", "probs", "digit_probs", "raw")
ENV_CACHE = "GANTK_CACHE_DIR"
FORMAT = 2


def cache_dir() -> Path:
    root = os.environ.get(ENV_CACHE)
    if root:
        return Path(root).expanduser() / "ref_stats"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "gantk" / "ref_stats"


def tensor_digest(x: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes."""
    h = hashlib.sha256(f"{x.dtype}|{tuple(x.shape)}".encode())
    h.update(x.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def source_digest(x: Any) -> str:
    """What a reference set's features depend on: a tensor's bytes, or for images read from disk
    (an object with ``files``) each file's path, size and mtime plus the decoding settings."""

    if isinstance(x, torch.Tensor):
        return tensor_digest(x)
    files = getattr(x, "files", None)
    if files is None:
        raise TypeError(f"cannot identify reference data of type {type(x).__name__}")
    h = hashlib.sha256(json.dumps({"shape": list(getattr(x, "shape", ())),
                                   "kind": type(x).__name__}).encode())
    for f in files:
        st = os.stat(f)
        h.update(f"{os.path.abspath(f)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def subset_indices(total: int, count: int | None, seed: int) -> np.ndarray:
    """The sorted indices of the real subset: every row when ``count`` is None or >= ``total``,
    else the first ``count`` of a seeded random permutation (so a smaller subset of the same seed
    is inside a larger one)."""

    if count is None or count >= total:
        return np.arange(total)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=g)[:count].sort().values.numpy()


def rows_of(x: Any, idx: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The rows ``idx`` of a tensor or of a decoded-on-access data set, uint8 -> [-1, 1]."""

    if isinstance(x, torch.Tensor):
        out = x[torch.as_tensor(idx, dtype=torch.long)]
    else:
        out = torch.stack([x[int(i)] for i in idx])
    return out.float() / 127.5 - 1 if out.dtype == torch.uint8 else out


class Rows:
    """The rows ``idx`` of ``x``, fetched a slice at a time (``rows[i:j]``), so a large folder is
    never decoded whole."""

    def __init__(self, x: Any, idx: np.ndarray) -> None:
        self.x, self.idx = x, np.asarray(idx, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, part: slice) -> torch.Tensor:
        return rows_of(self.x, self.idx[part])


def reference_key(source: str, nets: dict[str, Any]) -> str:
    parts = {"data": source, "nets": {k: nets[k].identity() for k in sorted(nets)},
             "format": FORMAT}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _stderr_line(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


class _Damaged(Exception):
    pass


def _load(path: Path, total: int, keys: set[str]) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    """``(index, arrays, meta)`` of a cache file; ``_Damaged`` with the reason when it is not a
    complete, consistent file of this cache."""

    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            index = np.asarray(f["index"])
            arrays = {k: np.asarray(f[k]) for k in _INPUTS if k in f.files}
    except Exception as exc:  # EOFError (0 bytes), BadZipFile, zlib/CRC errors, missing keys...
        raise _Damaged(f"{type(exc).__name__}: {str(exc)[:120]}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("total") != total:
        raise _Damaged("written for other data or by another gantk version")
    if index.ndim != 1 or index.dtype.kind not in "iu" or (
            len(index) and (index[0] < 0 or index[-1] >= total or np.any(np.diff(index) <= 0))):
        raise _Damaged("its row index is not a sorted list of rows of this data")
    if set(arrays) != keys or any(len(a) != len(index) for a in arrays.values()):
        raise _Damaged("its arrays do not match its row index")
    return index, arrays, meta


def _save(path: Path, index: np.ndarray, arrays: dict[str, np.ndarray],
          meta: dict[str, Any]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a handle: np.savez adds no suffix
        np.savez(fh, meta=np.array(json.dumps(meta)), index=index, **arrays)


def _features(arrays: dict[str, np.ndarray], rows: np.ndarray, space: str,
              probs_space: str) -> FeatureSet:
    return FeatureSet(**{k: a[rows] for k, a in arrays.items()}, space=space,
                      probs_space=probs_space)


def reference_features(x: Any, nets: dict[str, Any],
                       extract: Callable[[Rows], FeatureSet], *,
                       indices: np.ndarray | None = None, cache: bool = True,
                       describe: dict[str, Any] | None = None, source: str | None = None,
                       warn: Callable[[str], None] | None = None) -> tuple[FeatureSet, str]:
    """Features of the rows ``indices`` (default all) of the reference data ``x``: from the cache,
    or by ``extract(rows)`` for the rows it lacks (``rows``: :class:`Rows`, sliced in batches), then
    stored with the rest. Returns the features (in ``indices`` order) and ``"hit"``,
    ``"extended"``, ``"stored"``, ``"recomputed"`` (a damaged file, reported through ``warn``)
    or ``"off"``. ``source`` overrides :func:`source_digest` as the data's identity."""

    total = len(x)
    idx = np.arange(total) if indices is None else np.asarray(indices, dtype=np.int64)
    if not cache or not nets or not all(getattr(n, "cacheable", True) for n in nets.values()):
        return extract(Rows(x, idx)), "off"
    warn = warn or _stderr_line
    try:
        identity = source or source_digest(x)
    except (TypeError, OSError):  # data that cannot be identified without reading it all
        return extract(Rows(x, idx)), "off"
    path = cache_dir() / f"{reference_key(identity, nets)}.npz"
    keys = set(nets)
    have, arrays, meta, status = np.zeros(0, np.int64), {}, {}, "stored"
    if path.exists():
        try:
            have, arrays, meta = _load(path, total, keys)
            status = "extended"
        except _Damaged as why:
            warn(f"the reference-statistics cache file {path} is damaged ({why}); recomputing it")
            status = "recomputed"
    missing = np.setdiff1d(idx, have)
    if len(missing) == 0:
        return _features(arrays, np.searchsorted(have, idx), meta.get("space", ""),
                         meta.get("probs_space", "")), "hit"
    new = extract(Rows(x, missing))
    merged = np.concatenate([have, missing])
    order = np.argsort(merged, kind="stable")
    new_arrays = {}
    for k in keys:
        part = getattr(new, k)
        old = arrays.get(k)
        both = part if old is None or not len(have) else np.concatenate([old, part.astype(old.dtype)])
        new_arrays[k] = both[order]
    merged = merged[order]
    result = _features(new_arrays, np.searchsorted(merged, idx), new.space, new.probs_space)
    meta = {**(describe or {}), "format": FORMAT, "total": total, "rows": len(merged),
            "space": new.space, "probs_space": new.probs_space}
    try:
        _save(path, merged, new_arrays, meta)
    except (OSError, GantkError):  # a read-only cache folder costs time, not the evaluation
        return result, "off"
    return result, status
