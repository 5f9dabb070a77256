"""Feature nets: what FID, KID, precision/recall, density/coverage and JSD measure distances in.

Four spaces, never mixed, each named in every result:

* ``inception-v3 pool3 (FID weights, torch-fidelity)``: the FID Inception-v3 (2048-d pool3; its
  softmax for the Inception Score), torch-fidelity's extractor on the ``pt_inception-2015-12-05``
  weights that pytorch-fid and torch-fidelity use, fetched on first use and verified against a
  pinned SHA-256 (:mod:`gantk.metrics.inception`).
* ``gantk-digits-classifier-v1 penultimate (64-d)`` (``(3x64-d)`` for stacked digits): the
  classifier gantk ships (see :mod:`gantk.metrics.digits_classifier`).
* ``gantk-mnist-classifier-v1 penultimate (64-d)`` (``(3x64-d)`` for stacked MNIST): the MNIST
  classifier gantk ships for mnist5k, stacked_mnist5k and torchvision's mnist
  (see :mod:`gantk.metrics.mnist_classifier`).
* ``raw-2d``: 2-D points as generated (ring, grid), where the data space is already meaningful.

Each net maps a batch of samples (a torch tensor in the data's layout) to a partial
:class:`~gantk.metrics.base.FeatureSet` holding only the inputs asked for; ``evaluate`` concatenates
the batches, so images are never held, only their features.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import digits_classifier as dc
from . import mnist_classifier as mc
from .base import MetricError
from .inception import (ENV_INCEPTION, INCEPTION_FILE, INCEPTION_SHA256, INCEPTION_SPACE,
                        InceptionNet, inception_weights, missing_inception_fix)

__all__ = ["CLASSIFIERS", "ENV_INCEPTION", "INCEPTION_FILE", "INCEPTION_SHA256", "INCEPTION_SPACE",
           "RAW_SPACE", "DigitsFeatures", "FeatureNet", "InceptionFeatures", "RawPoints",
           "classifier_family", "digits_data", "digits_space", "find_inception_weights",
           "missing_inception_fix", "select_feature_net"]

RAW_SPACE = "raw-2d"


#: the shipped classifiers: feature_net name -> (module, data sets it fits)
CLASSIFIERS = {
    "digits": (dc, frozenset({"digits", "stacked_digits", "stacked-digits"})),
    "mnist": (mc, frozenset({"mnist5k", "stacked_mnist5k", "mnist"})),
}


def digits_space(channels: int, family: str = "digits") -> str:
    mod = CLASSIFIERS[family][0]
    dims = f"{mod.FEATURE_DIM}-d" if channels == 1 else f"{channels}x{mod.FEATURE_DIM}-d"
    return f"{mod.NAME} penultimate ({dims})"


def find_inception_weights(explicit: str | os.PathLike | None = None, *,
                           download: bool = False) -> Path | None:
    """The verified Inception weights file (:func:`gantk.metrics.inception.inception_weights`);
    by default only one already on disk (None when there is none)."""

    return inception_weights(explicit, download=download)


def inception_named(explicit: str | os.PathLike | None = None) -> bool:
    """Whether the user named a weights location (``--inception`` or $GANTK_INCEPTION_WEIGHTS)."""

    return bool(explicit or os.environ.get(ENV_INCEPTION))


# ---------------------------------------------------------------------------- nets


class FeatureNet:
    """``net(batch, wanted) -> FeatureSet`` with only the ``wanted`` inputs filled."""

    space: str = ""
    probs_space: str = ""
    provides: frozenset[str] = frozenset()
    cacheable: bool = True  # reference features may be cached (gantk.refstats)

    def __call__(self, batch: Tensor, wanted: set[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError  # pragma: no cover - abstract

    def identity(self) -> str:
        """What the features depend on besides the input: the space and its weights' digest (the
        key of cached reference statistics, so new weights invalidate them)."""
        weights = getattr(self, "weights_file", None)
        return f"{self.space}|{file_digest(weights) if weights else ''}"


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file (read in 1 MiB chunks)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class RawPoints(FeatureNet):
    """2-D points: the coordinates are the features."""

    space = RAW_SPACE
    provides = frozenset({"embedding", "raw"})
    cacheable = False  # the features are the data: nothing to save

    def __call__(self, batch: Tensor, wanted: set[str]) -> dict[str, np.ndarray]:
        pts = batch.detach().cpu().to(torch.float32).reshape(len(batch), -1).numpy()
        return {k: pts for k in wanted & {"embedding", "raw"}}


class DigitsFeatures(FeatureNet):
    """A shipped classifier (``family``: the 8x8 ``digits`` one or the 28 px ``mnist`` one):
    penultimate features and per-channel probabilities."""

    provides = frozenset({"embedding", "probs", "digit_probs"})

    def __init__(self, channels: int, device: Any = "cpu", family: str = "digits") -> None:
        self.family = family
        self.clf = (dc.load_digits_classifier if family == "digits"
                    else mc.load_mnist_classifier)(device)
        self.weights_file = dc.WEIGHTS if family == "digits" else mc.WEIGHTS
        self.space = digits_space(channels, family)
        self.probs_space = f"{self.clf.name} softmax" + (" (per channel)" if channels > 1 else "")

    def __call__(self, batch: Tensor, wanted: set[str]) -> dict[str, np.ndarray]:
        feats, logits = self.clf.run(batch)
        probs = torch.softmax(logits.double(), -1).numpy()
        out: dict[str, np.ndarray] = {}
        if "embedding" in wanted:
            out["embedding"] = feats.numpy()
        if "probs" in wanted:
            out["probs"] = probs
        if "digit_probs" in wanted:
            out["digit_probs"] = probs
        return out


class InceptionFeatures(InceptionNet, FeatureNet):
    """The FID Inception-v3 (:mod:`gantk.metrics.inception`): torch-fidelity's extractor on the
    verified ``pt_inception-2015-12-05`` weights."""


def classifier_family(data_name: str | None, info: Any) -> str | None:
    """Which shipped classifier fits this data (``"digits"``, ``"mnist"``), or None."""

    if getattr(info, "kind", "image") != "image" or int(info.shape[0]) not in (1, 3):
        return None
    name = (data_name or "").lower()
    return next((fam for fam, (_, names) in CLASSIFIERS.items() if name in names), None)


def digits_data(data_name: str | None, info: Any) -> bool:
    """Whether a shipped classifier (digits or MNIST) is the right net for this data."""

    return classifier_family(data_name, info) is not None


def uses_inception(info: Any, data_name: str | None, *, feature_net: str = "auto",
                   inception: str | os.PathLike | None = None) -> bool:
    """Whether :func:`select_feature_net` picks Inception for this data and choice."""

    if getattr(info, "kind", "image") != "image" or feature_net not in ("auto", "inception"):
        return False
    return (feature_net == "inception" or classifier_family(data_name, info) is None
            or inception_named(inception))


def select_feature_net(info: Any, data_name: str | None, *, feature_net: str = "auto",
                       inception: str | os.PathLike | None = None,
                       device: Any = "cpu") -> tuple[FeatureNet, str | None]:
    """The net for FID/KID/PRDC/JSD/IS on this data, and a note when a fallback was taken.

    ``feature_net``: ``"auto"`` (points: raw; images: the shipped classifier that fits the data,
    digits on digits, MNIST on mnist5k, stacked_mnist5k and mnist, unless Inception weights are
    named; Inception on every other image data), ``"inception"``, ``"digits"``, ``"mnist"`` or
    ``"raw"``. Inception's weights are downloaded and verified on first use."""

    kind = getattr(info, "kind", "image")
    channels = int(info.shape[0]) if kind == "image" else 0
    if feature_net not in {"auto", "inception", "raw", *CLASSIFIERS}:
        raise MetricError(f"unknown feature net {feature_net!r}", where="feature_net",
                          fix="use auto, inception, digits, mnist or raw.")
    if kind == "points" and feature_net not in ("auto", "raw"):
        raise MetricError(f"the {feature_net} feature net is for images; this data is 2-D points",
                          where="feature_net", fix="use auto or raw for ring and grid.")
    if kind == "points" or feature_net == "raw":
        if kind != "points":
            raise MetricError("raw features are for 2-D points, not images", where="feature_net",
                              fix="use auto, inception or digits for image data.")
        return RawPoints(), None
    if feature_net in CLASSIFIERS:
        if channels not in (1, 3):
            raise MetricError(f"the {feature_net} classifier takes 1 or 3 channels, the data has "
                              f"{channels}", where="feature_net", fix="use inception.")
        return DigitsFeatures(channels, device, feature_net), None
    family = classifier_family(data_name, info)
    if uses_inception(info, data_name, feature_net=feature_net, inception=inception):
        # on disk, else downloaded and verified (or one paragraph on how to place the file)
        return InceptionFeatures(inception_weights(inception, download=True), device), None
    note = (f"scores use the {digits_space(channels, family)} feature space (the default for "
            f"{data_name} data), not comparable with Inception-based numbers; --features "
            f"inception scores in Inception's space ({INCEPTION_FILE}, downloaded and verified on "
            "first use).")
    return DigitsFeatures(channels, device, family), note
