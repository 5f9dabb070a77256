"""FID, KID and the Inception Score.

FID (Heusel et al. 2017) fits a Gaussian to each feature set and takes the Frechet distance
between them, computed here by symmetric eigendecompositions and tested equal to clean-fid's value
(clean-fid's own ``frechet_distance`` calls ``scipy.linalg.sqrtm(disp=False)``, which SciPy 1.18
removed). KID (Binkowski et al. 2018) is the unbiased MMD^2 with the cubic polynomial kernel,
averaged over random subsets: clean-fid's ``kernel_distance`` on the same subsets, computed with
torch in :mod:`gantk.metrics.kid` (its ``kid`` is re-exported here). The Inception Score
(Salimans et al. 2016) is ``exp E_x KL(p(y|x) || p(y))`` over splits; clean-fid does not provide it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .base import FeatureSet, Metric, MetricError, as_float64
from .kid import kid

__all__ = ["FID", "KID", "FIDParams", "ISParams", "InceptionScore", "KIDParams", "fid",
           "frechet_distance", "gaussian_stats", "inception_score", "joint_probs", "kid",
           "trace_sqrt_product"]

# ---------------------------------------------------------------------------- pure functions


def gaussian_stats(feats: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows are samples), as clean-fid computes them."""

    f = as_float64(feats)
    return np.mean(f, axis=0), np.cov(f, rowvar=False)


def trace_sqrt_product(sigma1: Any, sigma2: Any) -> float:
    """``Tr((S1 S2)^1/2)`` for covariance matrices (symmetric positive semi-definite).

    ``S1 S2`` is similar to the symmetric ``A = S1^1/2 S2 S1^1/2`` (``S1^1/2 (S1 S2) S1^-1/2``),
    so the eigenvalues of ``(S1 S2)^1/2`` are the square roots of ``A``'s, all real and >= 0. Two
    symmetric eigendecompositions (``numpy.linalg.eigh``) give the trace exactly, without the
    general matrix square root (``scipy.linalg.sqrtm``) or its ``disp`` argument, which SciPy
    1.18 removed and clean-fid 0.1.35 still passes. Round-off below zero is clipped."""

    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    vals, vecs = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    inner = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sum(np.sqrt(np.clip(eig, 0, None))))


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """``||mu1-mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^1/2)``: the same quantity clean-fid's
    ``frechet_distance`` computes (tested equal to it), by :func:`trace_sqrt_product`."""

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise MetricError(f"mismatched Gaussian statistics: means {mu1.shape} and {mu2.shape}, "
                          f"covariances {s1.shape} and {s2.shape}", where="metric fid",
                          fix="compare features from the same feature net.")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt_product(s1, s2))


def fid(real_feats: Any, fake_feats: Any) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, d)."""

    real, fake = as_float64(real_feats), as_float64(fake_feats)
    if min(len(real), len(fake)) < 2:
        raise MetricError("FID needs at least 2 samples per set", where="metric fid",
                          fix="evaluate with a larger --n.")
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def joint_probs(probs: np.ndarray) -> np.ndarray:
    """(N, K) stays; (N, C, K) per-channel factors become the joint (N, K^C) distribution."""

    if probs.ndim == 2:
        return probs
    joint = probs[:, 0]
    for c in range(1, probs.shape[1]):
        joint = (joint[:, :, None] * probs[:, c, None, :]).reshape(len(probs), -1)
    return joint


def inception_score(probs: Any, *, splits: int = 10, chunk: int = 4096) -> tuple[float, float]:
    """Mean and standard deviation over ``splits`` of ``exp(E_x KL(p(y|x) || p(y)))``.

    ``probs`` is (N, K) class probabilities, or (N, C, K) per-channel probabilities of stacked
    digits (the label is the C-tuple, K^C classes; the joint is formed in chunks so 50k stacked
    samples never need a 50k x 1000 array). Uses ``KL = sum p log p - sum p log p(y)``, whose
    second term averages to ``sum p(y) log p(y)`` within a split."""

    probs = np.asarray(probs, dtype=np.float64)
    n = len(probs)
    if n < splits:
        raise MetricError(f"the Inception Score needs at least {splits} samples (one per split)",
                          where="metric is", fix="evaluate with a larger --n or fewer splits.")
    scores = []
    for part in np.array_split(np.arange(n), splits):
        neg_entropy = 0.0
        marginal = None
        for i in range(0, len(part), chunk):
            p = joint_probs(probs[part[i:i + chunk]])
            neg_entropy += float(np.sum(p * np.log(np.clip(p, 1e-30, None))))
            marginal = p.sum(0) if marginal is None else marginal + p.sum(0)
        marginal = marginal / len(part)
        cross = float(np.sum(marginal * np.log(np.clip(marginal, 1e-30, None))))
        scores.append(np.exp(neg_entropy / len(part) - cross))
    return float(np.mean(scores)), float(np.std(scores))


# ---------------------------------------------------------------------------- metric objects


class FIDParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KIDParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_subsets: int = Field(100, ge=1, description="random subsets averaged (clean-fid's default)")
    max_subset_size: int = Field(1000, ge=2, description="samples per subset, at most")
    seed: int = Field(0, description="seed of the subset draw")


class ISParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    splits: int = Field(10, ge=1, description="splits the score is averaged over (10 in the papers)")


class FID(Metric):
    name = "fid"
    directions = {"fid": "min"}
    inputs = frozenset({"embedding"})

    def __call__(self, real: FeatureSet, fake: FeatureSet, info: Any) -> dict[str, float]:
        return {"fid": fid(real.need("embedding", self.name), fake.need("embedding", self.name))}


class KID(Metric):
    name = "kid"
    directions = {"kid": "min"}
    inputs = frozenset({"embedding"})

    def __call__(self, real: FeatureSet, fake: FeatureSet, info: Any) -> dict[str, float]:
        p = self.params or KIDParams()
        return {"kid": kid(real.need("embedding", self.name), fake.need("embedding", self.name),
                           num_subsets=p.num_subsets, max_subset_size=p.max_subset_size,
                           seed=p.seed)}


class InceptionScore(Metric):
    """On Inception's softmax when its weights are present, else on the digits classifier's (the
    result's ``is_space`` says which; the two are different numbers, max 1008 vs 10 or 1000)."""

    name = "is"
    directions = {"is": "max"}
    extras = ("is_std",)
    inputs = frozenset({"probs"})
    uses_real = False

    def __call__(self, real: FeatureSet, fake: FeatureSet, info: Any) -> dict[str, float]:
        p = self.params or ISParams()
        mean, std = inception_score(fake.need("probs", self.name), splits=p.splits)
        return {"is": mean, "is_std": std}
