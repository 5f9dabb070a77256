"""Streaming image data: uint8 images through a DataLoader, shares across ranks, x-flip, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gantk import Pipeline
from gantk.train.distributed import share_slice
from gantk.base.errors import SpecError
from gantk.datasets.streaming import LoaderStream


def _images(n: int = 20) -> torch.Tensor:
    x = torch.zeros(n, 1, 4, 4, dtype=torch.uint8)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)  # the index, readable after conversion
    x[:, 0, 0, 3] = 255  # a bright pixel at the right edge: shows the flips
    return x


def _index(batch: torch.Tensor) -> list[int]:
    """The index pixel: at the left edge, or at the right one when the image was flipped."""
    value = torch.minimum(batch[:, 0, 0, 0], batch[:, 0, 0, 3])
    return [round((float(v) + 1) * 127.5) for v in value]


def _take(stream, k: int) -> list[torch.Tensor]:
    return [next(stream)[0] for _ in range(k)]


def test_stream_converts_per_batch_and_covers_each_epoch_once():
    stream = LoaderStream(_images(), None, batch_size=6, seed=1)
    batches = _take(stream, 3)  # one epoch: 3 batches of 6, 2 images dropped
    assert all(b.dtype == torch.float32 and b.min() >= -1 and b.max() <= 1 for b in batches)
    seen = [i for b in batches for i in _index(b)]
    assert len(set(seen)) == 18
    assert stream.epoch == 1 and stream.pos == 0


def test_rank_shares_rebuild_the_global_batch_and_workers_change_nothing():
    x, y = _images(), torch.arange(20)
    one = _take(LoaderStream(x, y, batch_size=6, seed=3, xflip=True), 5)
    shares = [_take(LoaderStream(x, y, batch_size=6, seed=3, xflip=True, part=share_slice(6, r, 2),
                                 workers=1 if r else 0), 5) for r in range(2)]
    for b in range(5):
        assert torch.equal(torch.cat([shares[0][b], shares[1][b]]), one[b])


def test_xflip_mirrors_about_half_the_images():
    stream = LoaderStream(_images(), None, batch_size=20, seed=0, xflip=True)
    flipped = [bool(v > 0.99) for v in next(stream)[0][:, 0, 0, 0]]  # bright pixel moved left
    assert 4 <= sum(flipped) <= 16
    plain = LoaderStream(_images(), None, batch_size=20, seed=0)
    assert not any(bool(v > 0.99) for v in next(plain)[0][:, 0, 0, 0])


def test_stream_resumes_from_its_state():
    x = _images()
    a = LoaderStream(x, None, batch_size=4, seed=2)
    _take(a, 7)
    state = a.state_dict()
    rest = _take(a, 4)
    b = LoaderStream(x, None, batch_size=4, seed=2)
    b.load_state_dict(state)
    assert all(torch.equal(u, v) for u, v in zip(_take(b, 4), rest))


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "images"  # apart from the run directories (their sample PNGs)
    root.mkdir()
    for i in range(24):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def _folder_spec(root, **data) -> dict:
    return {"stack": "backbone=dcgan + loss=ns + data=image_folder", "seed": 0,
            "backbone": {"width": 4, "latent_dim": 8},
            "data": {"root": str(root), "resolution": 16, **data},
            "train": {"steps": 4, "batch_size": 8, "log_every": 1, "sample_every": 0,
                      "ckpt_every": 2, "device": "cpu", "workers": 1, "xflip": True}}


def test_image_folder_streams_from_disk_trains_and_resumes(folder, tmp_path):
    full = Pipeline.from_spec(_folder_spec(folder, in_memory=False), device="cpu")
    full.train(out=tmp_path / "full", progress=False)
    assert isinstance(full.stream, LoaderStream)
    part = Pipeline.from_spec(_folder_spec(folder, in_memory=False), ["train.steps=2"],
                              device="cpu")
    part.train(out=tmp_path / "part", progress=False)
    resumed = Pipeline.from_spec(_folder_spec(folder, in_memory=False), device="cpu")
    resumed.train(out=tmp_path / "part", progress=False)  # resumes at step 2
    for a, b in zip(full.backbone.parameters(), resumed.backbone.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    # from memory (uint8) the same images give the same run
    mem = Pipeline.from_spec(_folder_spec(folder), device="cpu")
    mem.train(progress=False)
    for a, b in zip(full.backbone.parameters(), mem.backbone.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_xflip_on_embedded_data_is_refused(digits_spec):
    digits_spec["train"]["xflip"] = True
    with pytest.raises(SpecError, match="train.xflip"):
        Pipeline.from_spec(digits_spec, device="cpu").train(steps=1, progress=False)
