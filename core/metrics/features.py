"""Feature nets: what FID, KID, precision/recall, density/coverage and JSD measure distances in.

Four spaces, never mixed, each named in every result:

* ``inception-v3 (clean-fid)``: clean-fid's torchscript Inception-v3 (pool3, 2048-d; the
  softmax head for the Inception Score), with clean-fid's "clean" bicubic resize to 299 px. Used
  only from a location the user names (``--inception`` or ``$GANTK_INCEPTION_WEIGHTS``, never a
  shared folder such as /tmp), only when the file is the user's own and not writable by others,
  and only after its SHA-256 matches the expected digest: a TorchScript file is code, so no file
  that merely exists on disk may decide what gantk runs. gantk never lets clean-fid download.
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
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import digits_classifier as dc
from . import mnist_classifier as mc
from .base import MetricError

INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_SPACE = "inception-v3 (clean-fid)"
RAW_SPACE = "raw-2d"
ENV_INCEPTION = "GANTK_INCEPTION_WEIGHTS"
ENV_INCEPTION_SHA256 = "GANTK_INCEPTION_SHA256"
#: the SHA-256 of the published inception-2015-12-05.pt. It could not be read from the published
#: file while this was written (no network), so it is not pinned here: until it is, the user
#: gives the digest they verified ($GANTK_INCEPTION_SHA256).
INCEPTION_SHA256: str | None = None


#: the shipped classifiers: feature_net name -> (module, data sets it fits)
CLASSIFIERS = {
    "digits": (dc, frozenset({"digits", "stacked_digits", "stacked-digits"})),
    "mnist": (mc, frozenset({"mnist5k", "stacked_mnist5k", "mnist"})),
}


def digits_space(channels: int, family: str = "digits") -> str:
    mod = CLASSIFIERS[family][0]
    dims = f"{mod.FEATURE_DIM}-d" if channels == 1 else f"{channels}x{mod.FEATURE_DIM}-d"
    return f"{mod.NAME} penultimate ({dims})"


# ---------------------------------------------------------------------------- Inception weights


def clean_fid_cache_dir() -> Path:
    """The folder where clean-fid itself would look (gantk never reads from it: /tmp is shared)."""

    return Path("./" if platform.system() == "Windows" else "/tmp")


def inception_candidates(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Where gantk looks, in order: the path given, $GANTK_INCEPTION_WEIGHTS. Nothing else."""

    out = []
    for p in (explicit, os.environ.get(ENV_INCEPTION)):
        if p:
            p = Path(p).expanduser()
            out.append(p / INCEPTION_FILE if p.is_dir() else p)
    return out


def find_inception_weights(explicit: str | os.PathLike | None = None, *,
                           sha256: str | None = None) -> Path | None:
    """The verified Inception weights file the user pointed at, else None (never downloads).

    A named file must be named like clean-fid's file, belong to the user, be writable by no one
    else, and match the expected SHA-256 (:func:`verify_inception`); anything else is refused."""

    candidates = inception_candidates(explicit)
    if not candidates:
        return None
    path = candidates[0]
    where = str(explicit or f"${ENV_INCEPTION}")
    if not path.is_file():
        raise MetricError(f"no Inception weights at {path}", where=where,
                          fix=missing_inception_fix())
    if path.name != INCEPTION_FILE:
        raise MetricError(f"the Inception weights file must be named {INCEPTION_FILE} "
                          f"(clean-fid loads it by that name), got {path.name}",
                          where=str(path), fix=f"rename or link it to {INCEPTION_FILE}.")
    verify_inception(path, sha256)
    return path


def verify_inception(path: Path, sha256: str | None = None) -> None:
    """Refuse a weights file someone else could have put or changed, or whose digest is wrong."""

    from ..base.safeio import regular_file, sha256_file

    st = regular_file(path, what="Inception weights file").stat()
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise MetricError("the Inception weights file belongs to another user; loading it would "
                          "let them run code in this evaluation", where=str(path),
                          fix="copy it into a folder of your own (after checking it) and point "
                              f"--inception or ${ENV_INCEPTION} there.")
    if st.st_mode & 0o022:
        raise MetricError("the Inception weights file is writable by other users", where=str(path),
                          fix=f"chmod go-w {path} (and check it was not changed).")
    expected = (sha256 or os.environ.get(ENV_INCEPTION_SHA256) or INCEPTION_SHA256 or "").lower()
    if not expected:
        raise MetricError("no expected SHA-256 is known for the Inception weights, so the file "
                          "cannot be verified before it is loaded", where=str(path),
                          fix=f"set ${ENV_INCEPTION_SHA256} to the "
                              "published file's SHA-256, checked where you downloaded it.")
    actual = sha256_file(path)
    if actual != expected.strip():
        raise MetricError(f"the SHA-256 of the Inception weights is {actual}, not the expected "
                          f"{expected.strip()[:64]}", where=str(path),
                          fix="download the file again from the published address; a file that "
                              "does not match is never loaded.")


def missing_inception_fix() -> str:
    return (f"download clean-fid's {INCEPTION_FILE} (from "
            "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
            f"{INCEPTION_FILE}, on a machine with internet) into a folder of your own, and point "
            f"--inception or ${ENV_INCEPTION} at it, with its SHA-256 in "
            f"${ENV_INCEPTION_SHA256}.")


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
        self.weights_file = weights
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


def classifier_family(data_name: str | None, info: Any) -> str | None:
    """Which shipped classifier fits this data (``"digits"``, ``"mnist"``), or None."""

    if getattr(info, "kind", "image") != "image" or int(info.shape[0]) not in (1, 3):
        return None
    name = (data_name or "").lower()
    return next((fam for fam, (_, names) in CLASSIFIERS.items() if name in names), None)


def digits_data(data_name: str | None, info: Any) -> bool:
    """Whether a shipped classifier (digits or MNIST) is the right net for this data."""

    return classifier_family(data_name, info) is not None


def select_feature_net(info: Any, data_name: str | None, *, feature_net: str = "auto",
                       inception: str | os.PathLike | None = None,
                       device: Any = "cpu") -> tuple[FeatureNet, str | None]:
    """The net for FID/KID/PRDC/JSD/IS on this data, and a note when a fallback was taken.

    ``feature_net``: ``"auto"`` (points: raw; images: Inception when its weights are named,
    else the shipped classifier that fits the data: digits on digits, MNIST on mnist5k,
    stacked_mnist5k and mnist), ``"inception"``, ``"digits"``, ``"mnist"`` or ``"raw"``."""

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
    weights = find_inception_weights(inception)
    if weights is not None:
        return InceptionFeatures(weights, device), None
    if feature_net == "inception":
        raise MetricError("no Inception weights were named and gantk does not download them",
                          where=f"--inception / ${ENV_INCEPTION}", fix=missing_inception_fix())
    family = classifier_family(data_name, info)
    if family is not None:
        note = (f"no Inception weights named (--inception / ${ENV_INCEPTION}); scores "
                f"use the {digits_space(channels, family)} feature space instead and are not "
                "comparable with Inception-based numbers. To use Inception: "
                + missing_inception_fix())
        return DigitsFeatures(channels, device, family), note
    raise MetricError(f"no feature net is available for image data {data_name!r}: Inception "
                      "weights were not named and the shipped classifiers only fit the "
                      "digits and MNIST data sets", where=f"--inception / ${ENV_INCEPTION}",
                      fix=missing_inception_fix())
