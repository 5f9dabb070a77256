"""Classifier confidence: the share of samples the shipped digit classifier is sure about.

A proxy for sample *quality* on digit data that needs no reference statistics: a generated digit
that the classifier assigns to one class with probability >= ``threshold`` is counted confident.
The AdvLatGAN paper's App. E.4 shows that latents the I-FGSM search moves away from land on fewer
unreadable digits; the LIS paper calls such samples artifacts. Neither paper defines a number, so
this is gantk's operationalisation of both claims, reported next to the same share on real images
(``confident_share_real``), which is what a perfect sampler would score.

For stacked (RGB) digits a sample is confident only when every channel is: the per-channel maximum
probabilities are combined with ``min``. Feature space: gantk-digits-classifier-v1 (``digits``) or
gantk-mnist-classifier-v1 (``mnist5k``, ``stacked_mnist5k``, ``mnist``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .base import FeatureSet, Metric, MetricError


def confidence(probs: Any, threshold: float = 0.9) -> dict[str, float]:
    """``confident_share`` and ``mean_confidence`` of class probabilities (N, K) or (N, C, K)."""

    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 2:
        p = p[:, None, :]
    if p.ndim != 3 or len(p) == 0:
        raise MetricError(f"confidence needs class probabilities of shape (N, K) or (N, C, K) with "
                          f"N > 0, got {tuple(p.shape)}", where="metric confidence",
                          fix="score at least one sample of image data with a shipped classifier.")
    top = p.max(-1).min(-1)  # per sample: the least sure channel's top probability
    return {"confident_share": float(np.mean(top >= threshold)),
            "mean_confidence": float(np.mean(top))}


class ConfidenceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(0.9, gt=0, le=1, description="top class probability at or above "
                                                          "which a sample counts as confident")


class Confidence(Metric):
    """Share of generated (and real) samples classified with probability >= threshold."""

    name = "confidence"
    directions = {"confident_share": "max", "mean_confidence": "max"}
    extras = ("confident_share_real",)
    uses_real = True

    def requires(self, info: Any) -> set[str]:
        if getattr(info, "kind", "image") == "points":
            raise MetricError("confidence scores images with a digit classifier; this data set is "
                              "2-D points", where="metric confidence",
                              fix="use 'modes' (high_quality) for ring and grid instead.")
        return {"digit_probs"}

    def __call__(self, real: FeatureSet, fake: FeatureSet, info: Any) -> dict[str, float]:
        t = (self.params or ConfidenceParams()).threshold
        out = confidence(fake.need("digit_probs", self.name), t)
        out["confident_share_real"] = confidence(real.need("digit_probs", self.name), t)[
            "confident_share"]
        return out
