"""Pictures a user looks at: grids enlarged to a readable size, ring plots that show the real points."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from gantk.base.interfaces import DataInfo
from gantk.sample.viz import save_grid, save_scatter


def test_grid_enlarges_small_images_by_whole_pixels(tmp_path):
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    plain = np.asarray(Image.open(save_grid(x, tmp_path / "a.png", nrow=1, padding=0)))
    big = np.asarray(Image.open(save_grid(x, tmp_path / "b.png", nrow=1, padding=0, min_side=100)))
    assert plain.shape == (16, 16, 3)
    assert big.shape == (112, 112, 3)  # the smallest whole factor reaching 100 px: 7
    assert np.array_equal(big[::7, ::7], plain)  # each generated pixel a 7x7 square
    assert np.array_equal(big[3::7, 6::7], plain)


def test_ring_plot_draws_the_real_points_on_top(tmp_path):
    modes = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]])
    info = DataInfo(shape=(2,), kind="points", value_range=(-3.0, 3.0), modes=modes, mode_std=0.001)
    real = modes.repeat(50, 1)
    fake = torch.zeros(200, 2)  # a collapsed generator at the centre
    img = np.asarray(Image.open(save_scatter(fake, tmp_path / "r.png", info=info, real=real)))[..., :3]
    green = (img[..., 1] > 120) & (img[..., 0] < 90) & (img[..., 2] < 90)
    assert green.sum() > 20  # the real samples at the mode centres stay visible, not hidden
