"""The FID Inception-v3: weights fetched on first use, verified by a pinned SHA-256, loaded as a
plain state dict into torch-fidelity's extractor.

The weights are the PyTorch port of the TensorFlow FID Inception graph (``inception-2015-12-05``)
that pytorch-fid and torch-fidelity use: ``pt_inception-2015-12-05-6726825d.pth``, a state dict of
tensors, SHA-256 :data:`INCEPTION_SHA256` (pinned here; its first 8 hex digits are in the file
name, torch.hub's convention). Where gantk finds them, in order:

1. ``--inception PATH`` (a file, or a folder holding it);
2. ``$GANTK_INCEPTION_WEIGHTS`` (a file, or a folder holding it): the override for a shared or
   offline copy;
3. torch.hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``, else
   ``$XDG_CACHE_HOME/torch/hub/checkpoints``, else ``~/.cache/torch/hub/checkpoints``), where
   pytorch-fid and torch-fidelity keep the same file (torch-fidelity names it
   ``weights-inception-2015-12-05-6726825d.pth``): a copy they downloaded is reused.

When none holds it, gantk downloads it from :data:`INCEPTION_URLS` (pytorch-fid's release, then
torch-fidelity's) into the named folder or torch.hub's, unless ``$GANTK_OFFLINE=1``. Every file is
read once into memory, its SHA-256 compared with the pinned digest, and only then loaded from
those same bytes with ``torch.load(weights_only=True)``: a file that does not match is never
loaded (a download that does not match is deleted), and no file can make gantk run code (no
pickle, no TorchScript). Offline without the file, the error names the file, the URL, the digest
and the folder to put it in.

The network is torch-fidelity's ``FeatureExtractorInceptionV3`` (pool3 2048-d features and the
bias-free logits, as its FID/KID/ISC use), fed uint8 images: gantk's [-1, 1] floats are quantised
as a saved PNG would be, grey repeated to RGB, and the extractor resizes to 299 px with its
TensorFlow-1-compatible bilinear resize.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .base import MetricError

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
#: SHA-256 of INCEPTION_FILE (the digest pytorch-fid's and torch-fidelity's hosted copies carry)
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
#: where the file is published: pytorch-fid's release first, torch-fidelity's copy second
INCEPTION_URLS = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth",
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth",
)
#: other names the same file has in torch.hub's checkpoint folder (torch-fidelity's download)
OTHER_NAMES = ("weights-inception-2015-12-05-6726825d.pth",)
ENV_INCEPTION = "GANTK_INCEPTION_WEIGHTS"
ENV_OFFLINE = "GANTK_OFFLINE"
INCEPTION_SPACE = "inception-v3 pool3 (FID weights, torch-fidelity)"
PROBS_SPACE = "inception-v3 softmax (1008 classes)"
#: the real file is ~92 MB; anything far larger is not it (and is not read into memory)
MAX_BYTES = 256 << 20


# ---------------------------------------------------------------------------- where


def hub_dir() -> Path:
    """torch.hub's checkpoint folder ($TORCH_HOME, $XDG_CACHE_HOME or ~/.cache based)."""

    return Path(torch.hub.get_dir()) / "checkpoints"


def _named(explicit: str | os.PathLike | None) -> tuple[Path, str] | None:
    """The location the user named (flag first, then the environment) and how it was named."""

    for value, how in ((explicit, "--inception"), (os.environ.get(ENV_INCEPTION), f"${ENV_INCEPTION}")):
        if value:
            return Path(value).expanduser(), how
    return None


def target_path(explicit: str | os.PathLike | None = None) -> Path:
    """Where the weights file is expected (and downloaded to): in a named folder, at a named
    file path, else in torch.hub's checkpoint folder."""

    named = _named(explicit)
    if named is None:
        return hub_dir() / INCEPTION_FILE
    path = named[0]
    return path / INCEPTION_FILE if path.is_dir() or not path.suffix else path


def _existing(explicit: str | os.PathLike | None) -> Path | None:
    named = _named(explicit)
    folders = [named[0]] if named and (named[0].is_dir() or not named[0].suffix) else []
    if named and not folders:
        return named[0] if named[0].exists() else None
    if not named:
        folders = [hub_dir()]
    for folder in folders:
        for name in (INCEPTION_FILE, *OTHER_NAMES):
            if (folder / name).exists():
                return folder / name
    return None


def missing_inception_fix(explicit: str | os.PathLike | None = None) -> str:
    """The paragraph that says how to provide the weights by hand."""

    return (f"download {INCEPTION_FILE} from {INCEPTION_URLS[0]} (on a machine with internet; "
            f"SHA-256 {INCEPTION_SHA256}) and put it at {target_path(explicit)}, or point "
            f"--inception or ${ENV_INCEPTION} at the file or its folder. gantk verifies the "
            "digest before loading it.")


# ---------------------------------------------------------------------------- verify, fetch


def _read_verified(path: Path) -> bytes:
    """The file's bytes, if it is a regular file with the pinned SHA-256; else a MetricError."""

    from ..base.safeio import regular_file

    try:
        size = regular_file(path, what="Inception weights file").stat().st_size
        if size > MAX_BYTES:
            raise MetricError(f"the Inception weights file has {size} bytes, far more than the "
                              f"real {INCEPTION_FILE}", where=str(path),
                              fix=f"delete it; {missing_inception_fix()}")
        data = path.read_bytes()
    except OSError as exc:
        raise MetricError(f"cannot read the Inception weights: {exc.strerror or exc}",
                          where=str(path), fix=missing_inception_fix()) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != INCEPTION_SHA256:
        raise MetricError(f"the SHA-256 of this Inception weights file is {actual}, not the "
                          f"pinned {INCEPTION_SHA256}, so it was not loaded (a damaged, partial "
                          "or altered file)", where=str(path),
                          fix=f"delete it and run again to download it afresh, or "
                              f"{missing_inception_fix()}")
    return data


class _NoAnswer(Exception):
    """One address did not deliver the file."""


def download_weights(dest: Path, *, progress: bool = True) -> Path:
    """Fetch the file into ``dest`` from the first of :data:`INCEPTION_URLS` that answers; it is
    written beside ``dest`` and renamed into place only once its SHA-256 matches."""

    from ..base.safeio import atomic_path, ensure_dir

    if os.environ.get(ENV_OFFLINE, "").strip() not in ("", "0"):
        raise MetricError(f"the Inception weights are not on disk and ${ENV_OFFLINE} forbids "
                          "downloading them", where=str(dest), fix=missing_inception_fix())
    try:
        ensure_dir(dest.parent)
    except Exception as exc:  # a RunDirError paragraph about the folder
        raise MetricError(f"cannot create the folder for the Inception weights ({exc})",
                          where=str(dest.parent), fix=missing_inception_fix()) from None
    failures = []
    for url in INCEPTION_URLS:
        try:  # a temporary file beside dest, renamed over it only if the block ends cleanly
            with atomic_path(dest) as tmp:
                try:
                    torch.hub.download_url_to_file(url, str(tmp), progress=progress)
                except Exception as exc:  # URLError, HTTPError, timeouts: the next address
                    raise _NoAnswer(f"{url}: {type(exc).__name__}: {exc}"[:300]) from None
                digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
                if digest != INCEPTION_SHA256:
                    raise MetricError(f"the file downloaded from {url} has SHA-256 {digest}, not "
                                      f"the pinned {INCEPTION_SHA256}; it was deleted and not "
                                      "loaded", where=str(dest), fix=missing_inception_fix())
        except _NoAnswer as why:
            failures.append(str(why))
            continue
        return dest
    raise MetricError(f"the Inception weights file {INCEPTION_FILE} is not on disk and could not "
                      f"be downloaded ({'; '.join(failures)})", where=str(dest),
                      fix=missing_inception_fix())


def inception_weights(explicit: str | os.PathLike | None = None, *,
                      download: bool = True) -> Path | None:
    """The path of the verified weights file: found where the module docstring says, or
    downloaded (``download``); None when it is absent and ``download`` is False. A file that is
    present but does not match the pinned digest is refused, never loaded or replaced."""

    path = _existing(explicit)
    if path is None:
        named = _named(explicit)
        if named and named[0].suffix and not named[0].is_dir():
            raise MetricError(f"no Inception weights file at {named[0]} (named by {named[1]})",
                              where=str(named[0]), fix=missing_inception_fix(explicit))
        if not download:
            return None
        path = download_weights(target_path(explicit))
    _read_verified(path)
    return path


# ---------------------------------------------------------------------------- load, run


_STATE: dict[tuple[str, int, int], dict[str, Tensor]] = {}


def load_state_dict(path: Path) -> dict[str, Tensor]:
    """The verified file's state dict, from the bytes that were hashed (``weights_only=True``)."""

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _STATE:
        data = _read_verified(path)
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # only reachable if the pinned file itself changed format
            raise MetricError(f"cannot load the Inception weights: {type(exc).__name__}: {exc}",
                              where=str(path), fix=missing_inception_fix()) from None
        _STATE.clear()
        _STATE[key] = state
    return _STATE[key]


@contextlib.contextmanager
def _state_dict_from(state: dict[str, Tensor]) -> Iterator[Any]:
    """torch-fidelity's extractor takes its weights from ``load_state_dict_from_url`` (or from a
    ``torch.load(weights_only=False)`` of a path); hand it the verified state dict instead."""

    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    original = tfi.load_state_dict_from_url
    tfi.load_state_dict_from_url = lambda *args, **kwargs: state
    try:
        yield tfi.FeatureExtractorInceptionV3
    finally:
        tfi.load_state_dict_from_url = original


def to_uint8_rgb(batch: Tensor) -> Tensor:
    """[-1, 1] float images (N, 1 or 3, H, W) -> uint8 RGB, rounded as a saved PNG is."""

    if batch.dtype == torch.uint8:
        x = batch
    else:
        x = ((batch.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.ndim != 4 or x.shape[1] != 3:
        raise MetricError(f"Inception takes images with 1 or 3 channels, got shape "
                          f"{tuple(batch.shape)}", where="feature_net",
                          fix="use a feature net made for this data (--features).")
    return x.contiguous()


def build_extractor(path: Path, device: Any = "cpu") -> torch.nn.Module:
    with _state_dict_from(load_state_dict(path)) as cls:
        try:
            net = cls("inception-v3-compat", ["2048", "logits_unbiased"], verbose=False)
        except RuntimeError as exc:  # keys or shapes: a state dict of some other network
            raise MetricError(f"the Inception weights file does not fit Inception-v3: "
                              f"{str(exc)[:300]}", where=str(path),
                              fix=missing_inception_fix()) from None
    return net.to(device).eval()


class InceptionNet:
    """pool3 features (``embedding``) and softmax of the bias-free logits (``probs``)."""

    space = INCEPTION_SPACE
    probs_space = PROBS_SPACE
    provides = frozenset({"embedding", "probs"})
    cacheable = True

    def __init__(self, weights: Path, device: Any = "cpu") -> None:
        self.device = torch.device(device)
        self.weights_file = weights
        self.model = build_extractor(weights, self.device)

    def identity(self) -> str:
        return f"{self.space}|{INCEPTION_SHA256}"

    @torch.no_grad()
    def __call__(self, batch: Tensor, wanted: set[str]) -> dict[str, np.ndarray]:
        feats, logits = self.model(to_uint8_rgb(batch).to(self.device))
        out: dict[str, np.ndarray] = {}
        if "embedding" in wanted:
            out["embedding"] = feats.cpu().numpy()
        if "probs" in wanted:
            out["probs"] = torch.softmax(logits.double(), -1).cpu().numpy()
        return out
