"""A run that will score Inception FID during training finds out before step 1 that the weights are
missing (offline), not at its first evaluation after minutes of training."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gantk import Pipeline
from gantk.base.errors import GantkError


def test_missing_inception_weights_stop_a_run_before_its_first_step(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(images / f"{i}.png")
    monkeypatch.setenv("GANTK_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty cache
    monkeypatch.delenv("GANTK_INCEPTION_WEIGHTS", raising=False)
    spec = {"stack": "backbone=dcgan + loss=ns + data=image_folder", "seed": 0,
            "backbone": {"width": 4, "latent_dim": 8},
            "data": {"root": str(images), "resolution": 16},
            "train": {"steps": 4, "batch_size": 4, "log_every": 1, "sample_every": 0,
                      "ckpt_every": 2, "eval_every": 2, "eval_metrics": ["fid"], "eval_n": 10}}
    pipe = Pipeline.from_spec(spec)
    with pytest.raises(GantkError) as err:
        pipe.train(out=tmp_path / "run", progress=False)
    assert "6726825d" in err.value.paragraph()  # names the weights file and its digest
    assert pipe.step == 0  # stopped before training, nothing to lose
    assert not list((tmp_path / "run" / "checkpoints").glob("*.safetensors"))
