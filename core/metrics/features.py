"""Feature nets: what FID, KID, precision/recall, density/coverage and JSD measure distances in.

Three spaces, never mixed, each named in every result:

* ``inception-v3 (clean-fid)``: clean-fid's torchscript Inception-v3 (pool3, 2048-d; the
  softmax head for the Inception Score), with clean-fid's "clean" bicubic resize to 299 px. Used
  only when the weights file is already on disk: gantk never lets clean-fid download it.
* ``gantk-digits-classifier-v1 penultimate (64-d)`` (``(3x64-d)`` for stacked digits): the
  classifier gantk ships (see :mod:`gantk.metrics.digits_classifier`).
* ``raw-2d``: 2-D points as generated (ring, grid), where the data space is already meaningful.

Each net maps a batch of samples (a torch tensor in the data's layout) to a partial
:class:`~gantk.metrics.base.FeatureSet` holding only the inputs asked for; ``evaluate`` concatenates
the batches, so images are never held, only their features.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import digits_classifier as dc
from .base import MetricError

INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_SPACE = "inception-v3 (clean-fid)"
RAW_SPACE = "raw-2d"
ENV_INCEPTION = "GANTK_INCEPTION_WEIGHTS"


def digits_space(channels: int) -> str:
    dims = f"{dc.FEATURE_DIM}-d" if channels == 1 else f"{channels}x{dc.FEATURE_DIM}-d"
    return f"{dc.NAME} penultimate ({dims})"


# ---------------------------------------------------------------------------- Inception weights


def clean_fid_cache_dir() -> Path:
    """The folder where clean-fid looks for (and would download) the Inception weights."""

    return Path("./" if platform.system() == "Windows" else "/tmp")


def inception_candidates(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Where gantk looks, in order: the path given, $GANTK_INCEPTION_WEIGHTS, clean-fid's cache."""

    out = []
    for p in (explicit, os.environ.get(ENV_INCEPTION)):
        if p:
            p = Path(p).expanduser()
            out.append(p / INCEPTION_FILE if p.is_dir() else p)
    out.append(clean_fid_cache_dir() / INCEPTION_FILE)
    return out


def find_inception_weights(explicit: str | os.PathLike | None = None) -> Path | None:
    """The Inception weights file if one is on disk, else None (never downloads).

    A path given explicitly must exist and be named like clean-fid's file."""

    if explicit:
        path = inception_candidates(explicit)[0]
        if not path.is_file():
            raise MetricError(f"no Inception weights at {path}", where=str(explicit),
                              fix=missing_inception_fix())
        if path.name != INCEPTION_FILE:
            raise MetricError(f"the Inception weights file must be named {INCEPTION_FILE} "
                              f"(clean-fid loads it by that name), got {path.name}",
                              where=str(path), fix=f"rename or link it to {INCEPTION_FILE}.")
        return path
    for path in inception_candidates():
        if path.is_file() and path.name == INCEPTION_FILE:
            return path
    return None


def missing_inception_fix() -> str:
    return (f"copy clean-fid's {INCEPTION_FILE} (from "
            "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
            f"{INCEPTION_FILE}, fetched on a machine with internet) to "
            f"{clean_fid_cache_dir() / INCEPTION_FILE}, or point ${ENV_INCEPTION} or "
            "--inception at it.")


# ---------------------------------------------------------------------------- nets


class FeatureNet:
    """``net(batch, wanted) -> FeatureSet`` with only the ``wanted`` inputs filled."""

    space: str = ""
    probs_space: str = ""
    provides: frozenset[str] = frozenset()

    def __call__(self, batch: Tensor, wanted: set[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError  # pragma: no cover - abstract


class RawPoints(FeatureNet):
    """2-D points: the coordinates are the features."""

    space = RAW_SPACE
    provides = frozenset({"embedding", "raw"})

    def __call__(self, batch: Tensor, wanted: set[str]) -> dict[str, np.ndarray]:
        pts = batch.detach().cpu().to(torch.float32).reshape(len(batch), -1).numpy()
        return {k: pts for k in wanted & {"embedding", "raw"}}


class DigitsFeatures(FeatureNet):
    """The shipped digits classifier: penultimate features and per-channel probabilities."""

    provides = frozenset({"embedding", "probs", "digit_probs"})

    def __init__(self, channels: int, device: Any = "cpu") -> None:
        self.clf = dc.load_digits_classifier(device)
        self.space = digits_space(channels)
        self.probs_space = f"{dc.NAME} softmax" + (" (per channel)" if channels > 1 else "")

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


class InceptionFeatures(FeatureNet):
    """clean-fid's Inception-v3 (its own loading code), fed the way ``cleanfid.fid`` feeds
    generator output: [0, 255] floats, the "clean" PIL-bicubic resize to 299, grey repeated to RGB."""

    space = INCEPTION_SPACE
    probs_space = "inception-v3 softmax (1008 classes)"
    provides = frozenset({"embedding", "probs"})

    def __init__(self, weights: Path, device: Any = "cpu") -> None:
        from cleanfid.inception_torchscript import InceptionV3W
        from cleanfid.resize import build_resizer

        self.device = torch.device(device)
        try:  # download=False: the file is known to exist; clean-fid must not reach the network
            self.model = InceptionV3W(str(weights.parent), download=False,
                                      resize_inside=False).to(self.device).eval()
        except Exception as exc:  # a truncated or foreign file
            raise MetricError(f"cannot load the Inception weights: {type(exc).__name__}: {exc}",
                              where=str(weights), fix=missing_inception_fix()) from None
        self.resize = build_resizer("clean")

    def _prepare(self, batch: Tensor) -> Tensor:
        x = ((batch.detach().cpu().float().clamp(-1, 1) + 1) * 127.5).numpy()
        if x.shape[1] == 1:
            x = np.repeat(x, 3, axis=1)
        resized = [self.resize(img.transpose(1, 2, 0)).transpose(2, 0, 1) for img in x]
        return torch.from_numpy(np.stack(resized)).to(self.device)

    @torch.no_grad()
    def __call__(self, batch: Tensor, wanted: set[str]) -> dict[str, np.ndarray]:
        x = self._prepare(batch)
        out: dict[str, np.ndarray] = {}
        if "embedding" in wanted:
            out["embedding"] = self.model(x).cpu().double().numpy()
        if "probs" in wanted:  # the torchscript net's softmax, as StyleGAN2-ADA computes IS
            out["probs"] = self.model.base(x, no_output_bias=True).cpu().double().numpy()
        return out


def digits_data(data_name: str | None, info: Any) -> bool:
    """Whether the shipped digits classifier is the right net for this data."""

    return (data_name or "").lower() in {"digits", "stacked_digits", "stacked-digits"} and \
        getattr(info, "kind", "image") == "image"


def select_feature_net(info: Any, data_name: str | None, *, feature_net: str = "auto",
                       inception: str | os.PathLike | None = None, device: Any = "cpu"
                       ) -> tuple[FeatureNet, str | None]:
    """The net for FID/KID/PRDC/JSD/IS on this data, and a note when a fallback was taken.

    ``feature_net``: ``"auto"`` (points: raw; images: Inception when its weights are on disk,
    else the digits classifier on digits data), ``"inception"``, ``"digits"`` or ``"raw"``."""

    kind = getattr(info, "kind", "image")
    channels = int(info.shape[0]) if kind == "image" else 0
    if feature_net not in {"auto", "inception", "digits", "raw"}:
        raise MetricError(f"unknown feature net {feature_net!r}", where="feature_net",
                          fix="use auto, inception, digits or raw.")
    if kind == "points" and feature_net not in ("auto", "raw"):
        raise MetricError(f"the {feature_net} feature net is for images; this data is 2-D points",
                          where="feature_net", fix="use auto or raw for ring and grid.")
    if kind == "points" or feature_net == "raw":
        if kind != "points":
            raise MetricError("raw features are for 2-D points, not images", where="feature_net",
                              fix="use auto, inception or digits for image data.")
        return RawPoints(), None
    if feature_net == "digits":
        if channels not in (1, 3):
            raise MetricError(f"the digits classifier takes 1 or 3 channels, the data has "
                              f"{channels}", where="feature_net", fix="use inception.")
        return DigitsFeatures(channels, device), None
    weights = find_inception_weights(inception)
    if weights is not None:
        return InceptionFeatures(weights, device), None
    if feature_net == "inception":
        raise MetricError("Inception weights are not on disk and gantk does not download them",
                          where=str(clean_fid_cache_dir() / INCEPTION_FILE),
                          fix=missing_inception_fix())
    if digits_data(data_name, info):
        note = (f"Inception weights not found ({clean_fid_cache_dir() / INCEPTION_FILE}); scores "
                f"use the {digits_space(channels)} feature space instead and are not comparable "
                "with Inception-based numbers. To use Inception: " + missing_inception_fix())
        return DigitsFeatures(channels, device), note
    raise MetricError(f"no feature net is available for image data {data_name!r}: Inception "
                      "weights are not on disk and the shipped digits classifier only fits the "
                      "digits data sets",
                      where=str(clean_fid_cache_dir() / INCEPTION_FILE),
                      fix=missing_inception_fix())
