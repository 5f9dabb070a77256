"""Tiny settings shared by the tests that run methods on every backbone (seconds, not minutes)."""

from __future__ import annotations

import os
from typing import Any

#: where the device-sensitive tests (the matrix, precision) run: cpu unless GANTK_TEST_DEVICE says
#: otherwise, e.g. ``GANTK_TEST_DEVICE=cuda pytest tests/test_matrix.py tests/test_precision.py``
TEST_DEVICE = os.environ.get("GANTK_TEST_DEVICE", "cpu")

#: tiny options for the first-party backbones; a backbone not listed here gets its defaults
TINY_BACKBONES: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": [16, 16]},
    "dcgan": {"width": 4, "latent_dim": 8},
    "resnet": {"g_channels": 16, "d_channels": 8, "latent_dim": 8},
    "stylegan2": {"latent_dim": 8, "style_dim": 8, "n_mlp": 2, "channel_base": 64, "channel_max": 8,
                  "d_reg_every": 1},  # r1's default every = 1
    "autoencoder": {"width": 4, "latent_dim": 8, "hidden": [16]},
}
POINTS_DATA = {"name": "ring", "per_mode": 32}
IMAGE_DATA = {"name": "digits", "resolution": 16}
POINTS_BACKBONES = {"mlp"}


def tiny_spec(backbone: str, methods: list[dict[str, Any]], **train: Any) -> dict[str, Any]:
    """A two-step stack of ``backbone`` (tiny widths) on embedded data with ``methods``."""
    return {"seed": 0, "backbone": {"name": backbone, **TINY_BACKBONES.get(backbone, {})},
            "data": dict(POINTS_DATA if backbone in POINTS_BACKBONES else IMAGE_DATA),
            "methods": methods,
            "train": {"steps": 2, "batch_size": 8, "sample_every": 0, "ckpt_every": 0, **train}}


def assert_draws_follow(draw, expected, *, n: int, atol: float = 0.02) -> None:
    """``n`` calls of ``draw()`` (an int in 0..len(expected)-1) match ``expected`` frequencies."""
    import torch

    torch.manual_seed(0)
    counts = torch.bincount(torch.tensor([draw() for _ in range(n)]),
                            minlength=len(expected)).double() / n
    want = torch.tensor(expected, dtype=torch.double)
    assert torch.allclose(counts, want, atol=atol), (counts, want)
