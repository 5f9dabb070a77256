"""The digits classifier gantk ships as its offline feature net.

Inception-v3 weights cannot be fetched at run time, so digits runs are scored with a small CNN
trained on scikit-learn's 8x8 digits (``scripts/train_digits_classifier.py`` reproduces the shipped
``weights/digits_classifier.safetensors``; ``weights/digits_classifier.json`` records its held-out
accuracy, seed and settings). Its logits give the classifier score (the Inception Score formula on
this net) and the mode counts of stacked digits; its penultimate layer gives the embedding that
FID, KID, precision/recall, density/coverage and the K-means JSD use on digits.

Input contract: images in [-1, 1], NCHW, 1 or 3 channels, any square size (8, 16, 32 px in
practice); they are resized to 8x8 inside (area averaging when shrinking, which exactly undoes
nearest-neighbour upsampling). A 3-channel image is a *stacked* digit: each channel is classified
on its own, so the result has one row of logits per channel.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

NAME = "gantk-digits-classifier-v1"
INPUT_SIZE = 8
FEATURE_DIM = 64
NUM_CLASSES = 10
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS = WEIGHTS_DIR / "digits_classifier.safetensors"
META = WEIGHTS_DIR / "digits_classifier.json"

#: the held-out split the shipped accuracy is measured on (also used by the test)
SPLIT_SEED = 0
TEST_FRACTION = 0.2


class DigitsNet(nn.Module):
    """Three 3x3 conv layers and two linear layers; ``features`` is the 64-d penultimate layer
    (pre-activation: a linear map of the conv features, so no unit is dead and the Gaussian fit
    behind FID is well conditioned).

    ``feature_scale`` (a buffer set once by the training script: the root mean per-unit variance
    of the features on the training images) divides the embedding handed to the metrics, so its
    units have variance about 1 on real digits. FID is merely rescaled by it, but KID's cubic
    kernel ``(x.y/d + 1)^3`` is not scale-free: unscaled features would let the largest units
    dominate it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.fc1 = nn.Linear(128 * 2 * 2, FEATURE_DIM)
        self.fc2 = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        self.dropout = nn.Dropout(0.3)
        self.register_buffer("feature_scale", torch.ones(1))

    def features(self, x: Tensor) -> Tensor:
        h = F.relu(self.conv1(x))
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # 4x4
        h = F.max_pool2d(F.relu(self.conv3(h)), 2)  # 2x2
        return self.fc1(h.flatten(1))

    def head(self, h: Tensor) -> Tensor:
        return self.fc2(self.dropout(F.relu(h)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


# ---------------------------------------------------------------------------- data


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as float32 images in [-1, 1], shape (1797, 1, 8, 8), and labels."""

    from ..datasets.digits_file import digits_arrays  # scikit-learn's file, without sklearn

    images, target = digits_arrays()
    x = (images.astype(np.float32) / 8.0 - 1.0)[:, None]
    return x, target.astype(np.int64)


def heldout_split(n: int | None = None, labels: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out indices (stratified, fixed seed) for the shipped classifier."""

    from sklearn.model_selection import train_test_split

    if labels is None:
        labels = load_digits_arrays()[1]
    idx = np.arange(len(labels) if n is None else n)
    train, test = train_test_split(idx, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
                                   stratify=labels)
    return np.sort(train), np.sort(test)


def to_input_size(x: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """Resize single-channel images (N, 1, H, W) to ``size`` (8): area averaging down, bilinear up."""

    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    if h >= size and w >= size:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


# ---------------------------------------------------------------------------- the shipped net


class DigitsClassifier:
    """A shipped net behind an image-in, arrays-out interface (see the module docstring); also
    wraps the MNIST classifier (:mod:`gantk.metrics.mnist_classifier`) with its own input size,
    feature width and name. The net needs ``features``, ``head`` and a ``feature_scale`` buffer."""

    def __init__(self, net: nn.Module, device: torch.device | str = "cpu", *,
                 input_size: int = INPUT_SIZE, feature_dim: int = FEATURE_DIM,
                 name: str = NAME) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.input_size, self.feature_dim, self.name = input_size, feature_dim, name

    def _per_channel(self, x: Tensor) -> tuple[Tensor, int]:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images (N, 1 or 3, H, W), got shape {tuple(x.shape)}")
        n, c = x.shape[:2]
        flat = x.detach().to(self.device, torch.float32).reshape(n * c, 1, *x.shape[-2:])
        return to_input_size(flat.clamp(-1, 1), self.input_size), c

    @torch.no_grad()
    def run(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(embedding (N, C*feature_dim), logits (N, C, 10))`` for images (N, C, H, W) in [-1, 1]; the
        embedding is the penultimate layer divided by ``feature_scale``."""

        flat, c = self._per_channel(x)
        h = self.net.features(flat)
        logits = self.net.head(h)
        n = x.shape[0]
        emb = h / self.net.feature_scale
        return (emb.reshape(n, c * self.feature_dim).cpu(),
                logits.reshape(n, c, NUM_CLASSES).cpu())

    def logits(self, x: Tensor) -> Tensor:
        return self.run(x)[1]

    def features(self, x: Tensor) -> Tensor:
        return self.run(x)[0]

    def predict(self, x: Tensor) -> Tensor:
        """Class per channel, (N, C)."""
        return self.logits(x).argmax(-1)


def read_meta(path: Path = META) -> dict:
    """The JSON record written beside the weights (accuracy, seed, settings, sha256)."""

    return json.loads(path.read_text())


def load_shipped(net: nn.Module, weights: Path, script: str, device: torch.device | str,
                 **wrapper: object) -> DigitsClassifier:
    """A shipped net's weights into ``net``, wrapped; a clear error when the file is missing."""

    from safetensors.torch import load_file

    from .base import MetricError

    if not weights.exists():
        raise MetricError(f"the classifier weights are missing ({weights})", where=str(weights),
                          fix=f"regenerate them with `python {script}` (CPU, minutes) or "
                              "reinstall gantk.")
    net.load_state_dict(load_file(str(weights)))
    return DigitsClassifier(net, device, **wrapper)


@functools.lru_cache(maxsize=4)
def _load(device: str) -> DigitsClassifier:
    return load_shipped(DigitsNet(), WEIGHTS, "scripts/train_digits_classifier.py", device)


def load_digits_classifier(device: torch.device | str = "cpu") -> DigitsClassifier:
    """The shipped classifier on ``device`` (loaded once per device)."""

    return _load(str(torch.device(device)))
