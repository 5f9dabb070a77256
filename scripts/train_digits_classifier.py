"""Train the digits classifier that gantk ships as its offline feature net.

    python scripts/train_digits_classifier.py            # writes core/metrics/weights/...
    python scripts/train_digits_classifier.py --check    # retrain in memory, compare with shipped

Deterministic on CPU (one thread, fixed seeds, deterministic algorithms): the same torch version
reproduces the shipped safetensors file byte for byte; ``--check`` verifies that. Trains on 80% of
scikit-learn's digits (stratified split, seed 0), records the accuracy on the other 20% in the JSON
file beside the weights. Augmentation (one-pixel shifts, Gaussian noise, blur from an up/down
resize round trip) makes the net tolerant of the small defects of generated digits. Under a minute.
"""

from __future__ import annotations

import sys

import classifier_training as ct
import torch
import torch.nn.functional as F

from gantk.metrics import digits_classifier as dc

SETTINGS = {
    "seed": 0,
    "epochs": 40,
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "max_shift_px": 1,
    "noise_std": 0.15,
    "blur_prob": 0.3,
}


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random one-pixel shifts (zero padded, -1 is background), noise and a resize round trip."""

    n = x.shape[0]
    s = SETTINGS["max_shift_px"]
    padded = F.pad(x, (s, s, s, s), value=-1.0)
    dx = torch.randint(0, 2 * s + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * s + 1, (n,), generator=gen)
    out = torch.stack([padded[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8] for i in range(n)])
    blur = torch.rand(n, generator=gen) < SETTINGS["blur_prob"]
    if blur.any():
        up = F.interpolate(out[blur], size=(16, 16), mode="bilinear", align_corners=False)
        out[blur] = F.interpolate(up, size=(8, 8), mode="area")
    out = out + SETTINGS["noise_std"] * torch.randn(out.shape, generator=gen)
    return out.clamp(-1, 1)


def train() -> tuple[dict[str, torch.Tensor], dict]:
    return ct.train(dc, dc.DigitsNet, dc.load_digits_arrays, lambda y: dc.heldout_split(labels=y),
                    SETTINGS, augment, "scripts/train_digits_classifier.py",
                    data="sklearn.datasets.load_digits (8x8, values 0..16 scaled to [-1, 1])",
                    input="[-1, 1], 8x8 (larger images are area-downsampled inside)")


def main(argv: list[str] | None = None) -> int:
    return ct.main(__doc__, train, dc.WEIGHTS, dc.META, argv)


if __name__ == "__main__":
    sys.exit(main())
