"""Embedded data sets and the on-disk loaders."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from gantk import DataError, Pipeline
from gantk.datasets.sources import (BatchStream, DigitsParams, FolderParams, GridParams, RingParams,
                        TorchvisionParams, grid_modes, load_digits, load_folder, load_grid,
                        load_ring, load_torchvision, ring_modes)


def test_ring_is_eight_modes_on_a_circle_with_paper_std():
    p = RingParams()
    modes = ring_modes(p)
    assert modes.shape == (8, 2)
    torch.testing.assert_close(modes.norm(dim=1), torch.full((8,), 2.0))
    torch.testing.assert_close(modes[2], torch.tensor([0.0, 2.0]), atol=1e-6, rtol=0)
    x, y = load_ring(p)
    assert x.shape == (100_000, 2) and y is None  # 12.5K per mode
    d = torch.cdist(x, modes).min(1).values
    assert d.max() < 8 * p.std and abs(x.std(0).mean() - math.sqrt(2)) < 0.05


def test_grid_is_25_modes_at_2i_2j():
    p = GridParams()
    modes = grid_modes(p)
    assert modes.shape == (25, 2)
    assert sorted(set(modes[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    x, _ = load_grid(p)
    assert x.shape == (100_000, 2)
    assert torch.cdist(x, modes).min(1).values.max() < 8 * p.std


def test_digits_shapes_range_and_stacking():
    x, y = load_digits(DigitsParams(resolution=8))
    assert x.shape == (1797, 1, 8, 8) and y.shape == (1797,) and set(y.tolist()) == set(range(10))
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1
    x, y = load_digits(DigitsParams(resolution=32))
    assert x.shape == (1797, 1, 32, 32)
    x, y = load_digits(DigitsParams(resolution=16, stacked=True, stacked_size=500))
    assert x.shape == (500, 3, 16, 16) and y is None


def test_image_folder_loads_generated_images(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "sub").mkdir()
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "sub" / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    x, y = load_folder(FolderParams(root=str(tmp_path), resolution=16))
    assert x.shape == (5, 3, 16, 16) and y is None and x.dtype == torch.uint8  # streamed as uint8
    lazy, _ = load_folder(FolderParams(root=str(tmp_path), resolution=16, in_memory=False))
    assert len(lazy) == 5 and torch.equal(lazy.load_all(), x)  # read from disk: the same pixels
    with pytest.raises(DataError, match="no such folder"):
        load_folder(FolderParams(root=str(tmp_path / "nope")))


def test_missing_torchvision_data_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError) as err:
        load_torchvision("cifar10", TorchvisionParams(root=str(tmp_path)))
    text = err.value.paragraph()
    assert "cifar-10-python.tar.gz" in text and str(tmp_path) in text and "download" in text


def test_batch_stream_covers_an_epoch_and_resumes():
    x = torch.arange(10).float()[:, None]
    s = BatchStream(x, None, batch_size=3, seed=1)
    first = torch.cat([next(s)[0] for _ in range(3)]).flatten().tolist()
    assert len(set(first)) == 9  # no repeats within an epoch
    state = s.state_dict()
    a = [next(s)[0] for _ in range(5)]
    s.load_state_dict(state)
    b = [next(s)[0] for _ in range(5)]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    with pytest.raises(DataError, match="fewer than one batch"):
        BatchStream(x, None, batch_size=11, seed=0)


def test_pipeline_uses_labels_of_labelled_data(digits_spec):
    pipe = Pipeline.from_spec(digits_spec)
    x, y = pipe.real_data()
    assert pipe.data_info.num_classes == 10 and y is not None and len(x) == len(y)
