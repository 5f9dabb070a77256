"""JSD between real and generated bin occupancies after K-means (Richardson and Weiss 2018).

The NDB/JSD protocol of "On GANs and GMMs", which MSGAN and the AdvLatGAN paper (Tables 6-7)
report: K-means on the *real* samples defines K bins (Voronoi cells of the centroids); real and
generated samples are each assigned to their nearest centroid; the score is the Jensen-Shannon
divergence between the two bin-proportion histograms, with natural logarithms as in Richardson and
Weiss's ``ndb.py`` (so it lies in [0, ln 2]). 0 means every bin is filled in the same proportion;
a generator that misses modes leaves bins empty and drives it up.

Differences from ``ndb.py`` worth knowing: gantk clusters in the evaluation feature space (the
paper clustered pixels or their whitened version), uses scikit-learn's K-means with a fixed seed,
and caps K at a tenth of the real set so every bin holds about ten real samples or more.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .base import FeatureSet, Metric, MetricError, as_float64


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """``sum p log(p/q)`` over p > 0 (natural log); q must be positive wherever p is."""

    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    pos = p > 0
    if np.any(q[pos] <= 0):
        return float("inf")
    return float(np.sum(p[pos] * np.log(p[pos] / q[pos])))


def jensen_shannon(p: Any, q: Any) -> float:
    """``(KL(p||m) + KL(q||m)) / 2`` with ``m = (p+q)/2``; p and q are normalised first."""

    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)
    return 0.5 * (kl_divergence(p, m) + kl_divergence(q, m))


def kmeans_bins(real: Any, bins: int, *, seed: int = 0, n_init: int = 3) -> Any:
    """A fitted scikit-learn KMeans on the real features (the bins)."""

    from sklearn.cluster import KMeans

    real = as_float64(real)
    if len(real) < bins:
        raise MetricError(f"K-means with {bins} bins needs at least {bins} real samples, "
                          f"got {len(real)}", where="metric jsd", fix="use fewer bins.")
    return KMeans(n_clusters=bins, n_init=n_init, random_state=seed).fit(real)


def bin_proportions(kmeans: Any, feats: Any, chunk: int = 8192) -> np.ndarray:
    """Share of ``feats`` rows whose nearest centroid is each bin (assigned in chunks)."""

    feats = as_float64(feats)
    counts = np.zeros(kmeans.n_clusters, dtype=np.int64)
    for i in range(0, len(feats), chunk):
        counts += np.bincount(kmeans.predict(feats[i:i + chunk]), minlength=kmeans.n_clusters)
    return counts / max(1, counts.sum())


def jsd_kmeans(real: Any, fake: Any, *, bins: int = 100, seed: int = 0) -> tuple[float, int]:
    """JSD of bin occupancies with K-means (K = ``bins``, capped at len(real) // 10) fitted on
    ``real``; returns ``(jsd, K used)``."""

    real = as_float64(real)
    k = max(2, min(bins, len(real) // 10))
    km = kmeans_bins(real, k, seed=seed)
    return jensen_shannon(bin_proportions(km, real), bin_proportions(km, fake)), k


class JSDParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bins: int = Field(100, ge=2, description="K-means clusters (ndb.py's default; capped at a "
                                             "tenth of the real samples)")
    seed: int = Field(0, description="K-means seed")


class JSD(Metric):
    name = "jsd"
    directions = {"jsd": "min"}
    extras = ("jsd_bins",)
    inputs = frozenset({"embedding"})

    def __call__(self, real: FeatureSet, fake: FeatureSet, info: Any) -> dict[str, float]:
        p = self.params or JSDParams()
        value, k = jsd_kmeans(real.need("embedding", self.name), fake.need("embedding", self.name),
                              bins=p.bins, seed=p.seed)
        return {"jsd": value, "jsd_bins": float(k)}
