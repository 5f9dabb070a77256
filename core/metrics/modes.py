"""Mode metrics for mixture data: ring and grid (2-D Gaussians) and stacked digits (1000 modes).

Ring and grid, in the protocol of the unrolled-GAN / VEEGAN / PacGAN line of work that the
AdvLatGAN paper's synthetic experiments follow (App. E.1: ring = 8 Gaussians of std 0.001 on a
circle of radius 2, grid = 25 Gaussians of std 0.0025 at (2i, 2j)):

* a generated point is *high quality* when it lies within ``threshold`` (3) standard deviations of
  a mode centre, Euclidean distance, and then belongs to the nearest such mode. For an isotropic
  2-D Gaussian that radius holds 1 - exp(-4.5) = 98.9% of the real samples, so a perfect sampler
  scores about 0.989, not 0.997 (the 1-D three-sigma share);
* ``modes_covered``: modes that receive at least ``min_count`` high-quality samples (1 by default,
  i.e. any hit; several papers require more, e.g. 20 of 2500 - set min_count to match them);
* ``reverse_kl``: KL(p_gen || uniform) of the high-quality samples' mode histogram, natural log:
  0 when every mode is hit equally often, ln(M) when one mode takes them all; NaN when no sample is
  high quality (the histogram is empty, the divergence undefined).

Stacked digits (three digits in the three channels, 10^3 = 1000 modes): the mode of a sample is the
triple of the digits classifier's per-channel classes; ``modes_covered`` counts triples with at
least ``min_count`` samples and ``reverse_kl`` is KL(p_gen || uniform over 1000). A plain digits
image has 10 modes, scored the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .base import FeatureSet, Metric, MetricError, as_float64

# ---------------------------------------------------------------------------- pure functions


def assign_modes(points: Any, centres: Any, std: float, *, threshold: float = 3.0,
                 chunk: int = 65536) -> np.ndarray:
    """Index of the nearest mode centre for points within ``threshold * std`` of it, else -1."""

    pts, ctr = as_float64(points), as_float64(centres)
    if pts.shape[1] != ctr.shape[1]:
        raise MetricError(f"points have {pts.shape[1]} coordinates, mode centres {ctr.shape[1]}",
                          where="metric modes", fix="score samples of the data set the modes describe.")
    out = np.empty(len(pts), dtype=np.int64)
    for i in range(0, len(pts), chunk):
        d2 = ((pts[i:i + chunk, None, :] - ctr[None, :, :]) ** 2).sum(-1)
        nearest = d2.argmin(1)
        close = d2[np.arange(len(nearest)), nearest] < (threshold * std) ** 2
        out[i:i + chunk] = np.where(close, nearest, -1)
    return out


def histogram_metrics(mode_ids: np.ndarray, num_modes: int, *, min_count: int = 1
                      ) -> dict[str, float]:
    """``modes_covered`` and ``reverse_kl`` (KL to uniform) of mode ids; ids < 0 are ignored."""

    ids = np.asarray(mode_ids)
    counts = np.bincount(ids[ids >= 0], minlength=num_modes).astype(np.float64)
    total = counts.sum()
    if total == 0:
        rkl = float("nan")
    else:
        p = counts / total
        pos = p > 0
        rkl = float(np.sum(p[pos] * np.log(p[pos] * num_modes)))
    return {"modes_covered": float(np.sum(counts >= min_count)), "reverse_kl": rkl,
            "modes_total": float(num_modes)}


def mode_metrics(points: Any, centres: Any, std: float, *, threshold: float = 3.0,
                 min_count: int = 1) -> dict[str, float]:
    """Modes covered, share of high-quality samples and reverse KL for a 2-D Gaussian mixture."""

    ids = assign_modes(points, centres, std, threshold=threshold)
    out = histogram_metrics(ids, len(as_float64(centres)), min_count=min_count)
    out["high_quality"] = float(np.mean(ids >= 0)) if len(ids) else 0.0
    return out


def class_modes(probs: Any) -> tuple[np.ndarray, int]:
    """Mode ids from per-channel class probabilities (N, C, K): the C-tuple of argmax classes,
    read as a base-K number (channel 0 most significant). Returns ``(ids, K**C)``."""

    p = np.asarray(probs)
    if p.ndim == 2:
        p = p[:, None, :]
    n, c, k = p.shape
    cls = p.argmax(-1)
    ids = np.zeros(n, dtype=np.int64)
    for ch in range(c):
        ids = ids * k + cls[:, ch]
    return ids, k ** c


def classifier_mode_metrics(probs: Any, *, min_count: int = 1) -> dict[str, float]:
    """Modes covered (of K^C) and KL to uniform, from per-channel classifier probabilities."""

    ids, total = class_modes(probs)
    return histogram_metrics(ids, total, min_count=min_count)


# ---------------------------------------------------------------------------- metric object


class ModesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(3.0, gt=0, description="a point within this many mode std of a "
                                                    "centre is high quality (ring, grid)")
    min_count: int = Field(1, ge=1, description="samples a mode needs to count as covered")


class Modes(Metric):
    """Ring/grid: geometry against ``info.modes``/``info.mode_std``; digits: the classifier."""

    name = "modes"
    directions = {"modes_covered": "max", "high_quality": "max", "reverse_kl": "min"}
    extras = ("modes_total",)
    uses_real = False

    def requires(self, info: Any) -> set[str]:
        if getattr(info, "kind", "image") == "points":
            if getattr(info, "modes", None) is None or getattr(info, "mode_std", None) is None:
                raise MetricError("mode metrics need the data set's mode centres and std, and this "
                                  "points data set gives none", where="metric modes",
                                  fix="use a mixture data set (ring, grid) or drop 'modes'.")
            return {"raw"}
        return {"digit_probs"}

    def __call__(self, real: FeatureSet, fake: FeatureSet, info: Any) -> dict[str, float]:
        p = self.params or ModesParams()
        if getattr(info, "kind", "image") == "points":
            return mode_metrics(fake.need("raw", self.name), info.modes, float(info.mode_std),
                                threshold=p.threshold, min_count=p.min_count)
        return classifier_mode_metrics(fake.need("digit_probs", self.name), min_count=p.min_count)
