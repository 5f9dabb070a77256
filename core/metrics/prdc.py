"""Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020).

All four estimate manifolds with k-nearest-neighbour balls: each sample's ball has the radius of
its distance to its k-th nearest neighbour within its own set (itself excluded).

* precision: share of generated samples inside some real ball (fidelity);
* recall: share of real samples inside some generated ball (diversity);
* density: mean number of real balls containing a generated sample, divided by k (fidelity that
  rewards samples where real data is dense; 1 on average when the two sets match, can exceed 1);
* coverage: share of real samples whose own ball contains at least one generated sample
  (diversity that ignores generated outliers).

Same definitions and strict ``<`` as the reference ``prdc`` package (clovaai), computed here with
``torch.cdist`` in row chunks so 50k x 50k distances never exist at once. Values depend on the set
sizes (balls shrink as sets grow), so by default both sets are cut to the same size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from .base import FeatureSet, Metric, MetricError

# distances held at once (128 MiB of float64). float64 on purpose: cdist's fast matrix-product form
# loses ~1e-3 of absolute precision in float32 on 2-D points near radius 2, more than ring's k-NN radii.
_CHUNK_ELEMENTS = 2 ** 24


def _tensor(x: Any) -> torch.Tensor:
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    return t.to(torch.float64).reshape(len(t), -1).contiguous()


def _row_chunks(n_rows: int, n_cols: int) -> range:
    step = max(1, _CHUNK_ELEMENTS // max(1, n_cols))
    return range(0, n_rows, step)


def knn_radii(x: Any, k: int) -> torch.Tensor:
    """Distance of each row of ``x`` to its k-th nearest other row."""

    x = _tensor(x)
    if len(x) <= k:
        raise MetricError(f"k-NN radii with k={k} need more than {k} samples, got {len(x)}",
                          where="metric prdc", fix="evaluate with a larger --n or a smaller nearest_k.")
    out = torch.empty(len(x), dtype=torch.float64)
    step = _row_chunks(len(x), len(x)).step
    for i in range(0, len(x), step):
        d = torch.cdist(x[i:i + step], x)
        # k+1 smallest: the first is the point itself (distance 0), as in the prdc package
        out[i:i + step] = torch.topk(d, k + 1, dim=1, largest=False).values[:, k]
    return out


def prdc(real: Any, fake: Any, *, nearest_k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` against ``real`` (rows are samples)."""

    real, fake = _tensor(real), _tensor(fake)
    real_r, fake_r = knn_radii(real, nearest_k), knn_radii(fake, nearest_k)

    fake_in_real = torch.zeros(len(fake), dtype=torch.bool)  # precision
    fake_density = torch.zeros(len(fake), dtype=torch.float64)  # density
    real_min_to_fake = torch.full((len(real),), float("inf"), dtype=torch.float64)  # coverage
    real_in_fake = torch.zeros(len(real), dtype=torch.bool)  # recall
    step = _row_chunks(len(real), len(fake)).step
    for i in range(0, len(real), step):
        d = torch.cdist(real[i:i + step], fake)  # (rows of real, all fake)
        inside_real_ball = d < real_r[i:i + step, None]
        fake_in_real |= inside_real_ball.any(0)
        fake_density += inside_real_ball.sum(0, dtype=torch.float64)
        real_min_to_fake[i:i + step] = d.min(1).values
        real_in_fake[i:i + step] = (d < fake_r[None, :]).any(1)
    return {
        "precision": float(fake_in_real.double().mean()),
        "recall": float(real_in_fake.double().mean()),
        "density": float(fake_density.mean() / nearest_k),
        "coverage": float((real_min_to_fake < real_r).double().mean()),
    }


def equal_size(real: np.ndarray, fake: np.ndarray, seed: int = 0, *, equal: bool = True,
               cap: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Random subsets: the larger set cut to the smaller one's size (``equal``), and both cut
    to at most ``cap`` rows."""

    n = min(len(real), len(fake)) if equal else max(len(real), len(fake))
    if cap is not None:
        n = min(n, cap)
    rng = np.random.default_rng(seed)

    def cut(a: np.ndarray) -> np.ndarray:
        return a if len(a) <= n else a[np.sort(rng.choice(len(a), n, replace=False))]

    return cut(real), cut(fake)


class PRDCParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nearest_k: int = Field(5, ge=1, description="k of the k-NN balls (5 in Naeem et al.; "
                                                 "Kynkaanniemi et al. use 3)")
    equal_sizes: bool = Field(True, description="cut the larger set to the smaller one's size")
    max_samples: int | None = Field(None, ge=2, description="cut both sets to at most this many "
                                    "(the cost is quadratic; Naeem et al. use 10000)")
    seed: int = Field(0, description="seed of those cuts")


class PRDC(Metric):
    name = "prdc"
    directions = {"precision": "max", "recall": "max", "density": "max", "coverage": "max"}
    inputs = frozenset({"embedding"})

    def __call__(self, real: FeatureSet, fake: FeatureSet, info: Any) -> dict[str, float]:
        p = self.params or PRDCParams()
        r, f = real.need("embedding", self.name), fake.need("embedding", self.name)
        if p.equal_sizes or p.max_samples is not None:
            r, f = equal_size(r, f, p.seed, equal=p.equal_sizes, cap=p.max_samples)
        return prdc(r, f, nearest_k=p.nearest_k)
