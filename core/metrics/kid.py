"""KID (Binkowski et al. 2018) with torch: clean-fid's ``kernel_distance`` on the same subsets.

clean-fid's ``kernel_distance(feats1, feats2, num_subsets, max_subset_size)`` takes
``m = min(len(feats1), len(feats2), max_subset_size)`` and, for each of ``num_subsets`` subsets,
draws ``x = feats2[np.random.choice(len(feats2), m, replace=False)]`` and then
``y = feats1[np.random.choice(len(feats1), m, replace=False)]`` from numpy's global generator; it
averages the unbiased MMD^2 of the cubic kernel ``k(a, b) = (a.b / d + 1)^3``:
``(sum of k over x-x and y-y pairs without the diagonals) / (m-1) - 2 (sum over x-y pairs) / m``,
divided by ``m``. gantk calls it with the real set first, as clean-fid's ``compute_kid`` does.

This module draws the very same index sets (a ``numpy.random.RandomState(seed)`` is the stream
``np.random.seed(seed)`` gives clean-fid, in the same order: generated then real, per subset) and
sums the same kernel values in float64 with torch, for each block of pairs (generated-generated,
real-real, generated-real) by whichever of two exact routes costs less there:

* **full**: the kernel over all pairs once, in row tiles of at most 2^23 values (64 MiB), and
  each subset's sum as ``s^T K t`` with 0/1 indicator rows ``s``, ``t`` (one matrix product for all
  subsets). Cheaper when the sets are not much larger than a subset (n = 5,000, m = 1,000:
  25M kernel values per pair of sets instead of 100 x 1M);
* **subsets**: clean-fid's loop, a few subsets at a time as batched matrix products.

Both agree with clean-fid's own function on the same float64 features to float64 round-off
(tests/test_kid.py: 1e-6 relative is asserted; about 1e-14 is seen). Before issue 31 gantk called
clean-fid's function on float32 copies of the features, which moved the score by about 1e-5
relative; the float64 value is the exact one (its speed: docs/metrics.md, docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import MetricError, as_float64

#: kernel values per tile (float64: 64 MiB)
TILE = 1 << 23


def subset_indices(n_real: int, n_fake: int, num_subsets: int, max_subset_size: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (num_subsets, m) index rows clean-fid draws after ``np.random.seed(seed)``: for each
    subset the generated set's first, then the real set's (``feats2`` before ``feats1``)."""

    m = min(n_real, n_fake, max_subset_size)
    rs = np.random.RandomState(seed)
    fake_idx = np.empty((num_subsets, m), np.int64)
    real_idx = np.empty((num_subsets, m), np.int64)
    for s in range(num_subsets):
        fake_idx[s] = rs.choice(n_fake, m, replace=False)
        real_idx[s] = rs.choice(n_real, m, replace=False)
    return fake_idx, real_idx


def _kernel(a: Any, b: Any, d: int) -> Any:
    return (a @ b.mT).div_(d).add_(1).pow_(3)


def _full_sums(a: Any, b: Any, ia: Any, ib: Any, same: bool) -> Any:
    """Per subset: the sum of k over the subset's pairs (rows of ``ia`` x rows of ``ib``), without
    the diagonal when ``a`` is ``b``."""
    import torch

    d = a.shape[1]
    rows = max(1, TILE // max(1, len(b)))
    tot = torch.zeros(len(ia), dtype=torch.float64)
    for r0 in range(0, len(a), rows):
        k = _kernel(a[r0:r0 + rows], b, d)
        tot += ((ia[:, r0:r0 + rows] @ k) * ib).sum(1)
    if same:
        diag = ((a * a).sum(1) / d + 1) ** 3
        tot -= ia @ diag
    return tot


def _indicator(idx: np.ndarray, n: int) -> Any:
    import torch

    out = torch.zeros(len(idx), n, dtype=torch.float64)
    return out.scatter_(1, torch.from_numpy(idx), 1.0)


def _subset_sums(a: Any, b: Any, a_idx: np.ndarray, b_idx: np.ndarray, same: bool) -> Any:
    """As :func:`_full_sums`, subset by subset (a few at a time, as batched matrix products)."""
    import torch

    num, m = a_idx.shape
    d = a.shape[1]
    batch = max(1, TILE // (m * m))
    out = []
    for s0 in range(0, num, batch):
        xs = a[torch.from_numpy(a_idx[s0:s0 + batch])]  # (B, m, d)
        ys = xs if same else b[torch.from_numpy(b_idx[s0:s0 + batch])]
        tot = _kernel(xs, ys, d).sum((1, 2))
        if same:
            tot -= (((xs * xs).sum(2) / d + 1) ** 3).sum(1)
        out.append(tot)
    return torch.cat(out)


def _block(a: Any, b: Any, a_idx: np.ndarray, b_idx: np.ndarray, same: bool, how: str) -> Any:
    if how == "full":
        ia = _indicator(a_idx, len(a))
        return _full_sums(a, b, ia, ia if same else _indicator(b_idx, len(b)), same)
    return _subset_sums(a, b, a_idx, b_idx, same)


def block_route(n_a: int, n_b: int, num_subsets: int, m: int, d: int) -> str:
    """``"full"`` or ``"subsets"`` for one block of pairs (sets of ``n_a`` and ``n_b`` rows):
    the cheaper in multiply-adds, the subsets route's gathers and smaller products counted at
    twice the price (measured on 2 CPU cores)."""

    full = n_a * n_b * (2 * d + 2 * num_subsets + 4)
    subsets = num_subsets * m * m * (2 * d + 4) * 2
    return "full" if full <= subsets else "subsets"


def routes(n_real: int, n_fake: int, num_subsets: int, m: int, d: int) -> dict[str, str]:
    """The route of each block: generated-generated, real-real and generated-real pairs (at
    n = 10,000 generated against the 1,797 digits, only the first takes the subset loop)."""

    return {"fake-fake": block_route(n_fake, n_fake, num_subsets, m, d),
            "real-real": block_route(n_real, n_real, num_subsets, m, d),
            "fake-real": block_route(n_fake, n_real, num_subsets, m, d)}


def kid(real_feats: Any, fake_feats: Any, *, num_subsets: int = 100,
        max_subset_size: int = 1000, seed: int = 0, how: str | None = None) -> float:
    """KID as ``cleanfid.fid.kernel_distance(real, fake, num_subsets, max_subset_size)`` after
    ``np.random.seed(seed)``, in float64; numpy's global generator is not used or changed.
    ``how`` forces one route for every block (``"full"``, ``"subsets"``), for tests and
    benchmarks; by default each block takes the cheaper (:func:`routes`)."""

    import torch

    real, fake = as_float64(real_feats), as_float64(fake_feats)
    if min(len(real), len(fake)) < 2:
        raise MetricError("KID needs at least 2 samples per set", where="metric kid",
                          fix="evaluate with a larger --n.")
    if real.shape[1] != fake.shape[1]:
        raise MetricError(f"feature sizes differ: {real.shape[1]} (real) and {fake.shape[1]}",
                          where="metric kid", fix="compare features from the same feature net.")
    fake_idx, real_idx = subset_indices(len(real), len(fake), num_subsets, max_subset_size, seed)
    m, d = fake_idx.shape[1], real.shape[1]
    if how not in (None, "full", "subsets"):
        raise ValueError(f"unknown KID route {how!r}")
    way = dict.fromkeys(("fake-fake", "real-real", "fake-real"), how) if how else \
        routes(len(real), len(fake), num_subsets, m, d)
    x, y = torch.from_numpy(fake), torch.from_numpy(real)
    with torch.no_grad():
        same = (_block(x, x, fake_idx, fake_idx, True, way["fake-fake"])
                + _block(y, y, real_idx, real_idx, True, way["real-real"]))
        cross = _block(x, y, fake_idx, real_idx, False, way["fake-real"])
        per_subset = same / (m - 1) - cross * 2 / m
    return float(per_subset.sum()) / num_subsets / m
