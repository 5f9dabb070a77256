"""scikit-learn's 8x8 digits (UCI optdigits test set, 1,797 images), read without scikit-learn.

``sklearn.datasets.load_digits`` is ``np.loadtxt`` of the file ``sklearn/datasets/data/digits.csv.gz``
(64 pixel values 0..16, then the label), but importing scikit-learn to get there costs about a
second (scipy, joblib, threadpoolctl...), which `gantk eval` paid on every call even with the
reference features cached. :func:`digits_arrays` locates the same file through the import system
without importing the package and parses it the way scikit-learn does (tested equal), falling
back to ``load_digits`` if the file is not where it is expected.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

_cache: tuple[np.ndarray, np.ndarray] | None = None


def digits_file() -> Path | None:
    """scikit-learn's ``digits.csv.gz``, found without importing scikit-learn (None if absent)."""

    spec = importlib.util.find_spec("sklearn")  # a top-level name: nothing is imported
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``(images, target)`` as ``load_digits()`` gives them: float64 (1797, 8, 8) in 0..16 and
    int labels. Read once per process; copies are returned."""

    global _cache
    if _cache is None:
        path = digits_file()
        if path is not None:
            with gzip.open(path, mode="rt", encoding="utf-8") as fh:
                data = np.loadtxt(fh, delimiter=",")
            _cache = data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
        else:  # pragma: no cover - another scikit-learn layout: let it read its own file
            from sklearn.datasets import load_digits

            bunch = load_digits()
            _cache = bunch.images, bunch.target
    return _cache[0].copy(), _cache[1].copy()
