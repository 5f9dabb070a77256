"""Cached reference statistics: the real set's features, computed once per (data, feature net,
n_real) and reused by every later evaluation.

The cache is a folder of ``.npz`` files (numpy arrays only, read with ``allow_pickle=False``, so a
file in it can never make gantk execute code) at ``$GANTK_CACHE_DIR/ref_stats``, else
``$XDG_CACHE_HOME/gantk/ref_stats``, else ``~/.cache/gantk/ref_stats``. A file's name is the
sha256 of everything its features depend on:

* the real images themselves (a digest of the exact subset scored: the data set, its options,
  its split, ``n_real`` and the subset seed all change it, and so does a changed file on disk);
* each feature net's identity (its space and the sha256 of its weights file);
* which inputs were extracted (embedding, class probabilities, digit probabilities).

So a change of data or net gives a new key and the old file is simply not used; deleting the
folder is always safe. Writes go to a temporary file that is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..base.safeio import atomic_path
from .base import FeatureSet

_INPUTS = ("embedding", "probs", "digit_probs", "raw")
ENV_CACHE = "GANTK_CACHE_DIR"


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


def reference_key(real_x: torch.Tensor, nets: dict[str, Any]) -> str:
    parts = {"data": tensor_digest(real_x),
             "nets": {k: nets[k].identity() for k in sorted(nets)}, "format": 1}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _load(path: Path) -> FeatureSet | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            arrays = {k: f[k] for k in _INPUTS if k in f.files}
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None  # damaged or foreign: recompute (and overwrite)
    return FeatureSet(**arrays, space=meta.get("space", ""), probs_space=meta.get("probs_space", ""))


def _save(path: Path, feats: FeatureSet, meta: dict[str, Any]) -> None:
    arrays = {k: getattr(feats, k) for k in _INPUTS if getattr(feats, k) is not None}
    meta = {**meta, "space": feats.space, "probs_space": feats.probs_space}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a handle: np.savez adds no suffix
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)


def reference_features(real_x: torch.Tensor, nets: dict[str, Any],
                       extract: Callable[[], FeatureSet], *, cache: bool = True,
                       describe: dict[str, Any] | None = None) -> tuple[FeatureSet, str]:
    """The real set's features from the cache, or ``extract()`` and store them. Returns the
    features and ``"hit"``, ``"stored"`` or ``"off"``."""

    if not cache or not nets or not all(getattr(n, "cacheable", True) for n in nets.values()):
        return extract(), "off"
    path = cache_dir() / f"{reference_key(real_x, nets)}.npz"
    if path.is_file():
        feats = _load(path)
        if feats is not None and len(feats) == len(real_x):
            return feats, "hit"
    feats = extract()
    try:
        _save(path, feats, {"n_real": len(real_x), **(describe or {})})
    except OSError:  # a read-only cache folder costs time, not the evaluation
        return feats, "off"
    return feats, "stored"
