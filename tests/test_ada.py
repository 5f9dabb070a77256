"""ADA: the controller's p trajectory on known D outputs, the pipeline against NVlabs' values, the
identity at p = 0, gradients through it, and a training run that logs p and resumes it."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gantk import IncompatibleStackError, Pipeline
from gantk_plugins.augment import Ada, AdaParams
from gantk_plugins.augment.ada_ops import PIPELINES, augment
from tiny import tiny_spec

BGC = PIPELINES["bgc"]


def _controller(**kw) -> Ada:
    return Ada(params=AdaParams(**kw))


def _logits(*signs: float) -> torch.Tensor:
    return torch.tensor(signs).view(-1, 1) * 3.0  # D outputs (batch, 1) with these signs


# ------------------------------------------------------------------------------ the controller


def test_p_follows_sign_of_rt_minus_target_with_the_papers_step_and_clamps():
    # kimg = 0.01: p moves by 1 in 10 real images; interval 2 x batch 4 = 8 images: step 0.8
    ada = _controller(kimg=0.01, interval=2, target=0.6)
    trajectory = []
    for batch in [(1, 1, 1, 1)] * 4 + [(-1, -1, 1, -1)] * 4:
        ada.observe(_logits(*batch))
        trajectory.append(round(float(ada.p), 6))
    # r_t = 1 > 0.6: up by 0.8, then clamped at 1; r_t = -0.5 < 0.6: down by 0.8, clamped at 0
    assert trajectory == [0.0, 0.8, 0.8, 1.0, 1.0, 0.2, 0.2, 0.0]
    assert math.isclose(float(ada.rt), -0.5)


def test_only_every_interval_updates_move_p_and_rt_is_their_mean_sign():
    ada = _controller(kimg=1.0, interval=3, target=0.6)  # 1000 images per unit of p
    ada.observe(_logits(1, 1))
    ada.observe(_logits(1, -1))
    assert float(ada.p) == 0.0 and int(ada.updates) == 2  # no adjustment before the 3rd update
    ada.observe(_logits(1, 1))
    # r_t = (2 + 0 + 2) / 6 = 0.667 > 0.6 -> p = 6 images / 1000
    assert math.isclose(float(ada.rt), 4 / 6, rel_tol=1e-6)
    assert math.isclose(float(ada.p), 0.006, rel_tol=1e-6)
    assert int(ada.updates) == 0 and int(ada.images) == 0 and float(ada.sign_sum) == 0


def test_rt_at_the_target_leaves_p_and_p_starts_where_asked():
    ada = _controller(kimg=0.01, interval=1, target=0.6, p=0.3)
    ada.observe(_logits(1, 1, 1, 1, -1))  # r_t = 3/5 = 0.6 exactly: sign 0
    assert math.isclose(float(ada.p), 0.3, rel_tol=1e-6)
    ada.observe(_logits(1, 1, 1, -1, -1))  # r_t = 0.2: down by 5/10
    assert float(ada.p) == 0.0


def test_fixed_p_ignores_d():
    pipe = Pipeline.from_spec(tiny_spec("dcgan", [{"name": "ada", "adaptive": False, "p": 0.25,
                                                   "kimg": 0.001}], device="cpu"))
    pipe.train(steps=3, progress=False)
    (ada,) = pipe.trainer.d_transforms
    assert float(ada.p) == 0.25


# ------------------------------------------------------------------------------ the pipeline


def _image(c: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")
    base = torch.stack([torch.sin(xx * 0.7 + k) * torch.cos(yy * 0.4 - k) for k in range(c)])
    return torch.stack([base * (0.5 + 0.1 * i) for i in range(6)]).float()


# NVlabs' AugmentPipe (stylegan2-ada-pytorch d72cc7d, training/augment.py, the bgc multipliers),
# run on CPU on _image(c) after torch.manual_seed(7): per-image sums of the output
NVLABS_SUMS = {
    (1, 0.5): [11.29888, -25.17762, 5.09936, -3.62642, 6.95606, -24.61409],
    (1, 1.0): [9.26938, -23.39455, 20.83723, -3.18625, 22.36605, -83.43423],
    (3, 0.5): [5.47922, -92.92649, 3.41586, -11.39885, 21.42186, -65.15163],
    (3, 1.0): [-0.57839, -83.42107, 59.66645, -4.8299, 46.77707, -294.94592],
}


@pytest.mark.parametrize("key", sorted(NVLABS_SUMS))
def test_pipeline_matches_nvlabs_augmentpipe_for_the_same_draws(key):
    channels, p = key
    torch.manual_seed(7)
    out = augment(_image(channels), p, BGC)
    torch.testing.assert_close(out.sum(dim=(1, 2, 3)), torch.tensor(NVLABS_SUMS[key]),
                               rtol=0, atol=2e-3)


def test_p_zero_is_the_identity_and_p_one_changes_every_image():
    x = _image(3)
    torch.manual_seed(0)
    assert torch.equal(augment(x, 0.0, BGC), x)
    ada = _controller(p=0.0)
    assert ada(x, None, real=True) is x  # not even a copy at p = 0
    torch.manual_seed(0)
    out = augment(x, 1.0, BGC)
    assert out.shape == x.shape
    assert bool(((out - x).flatten(1).abs().amax(1) > 0.05).all())


def test_each_group_moves_only_what_it_should():
    x = _image(1)
    torch.manual_seed(1)
    col = augment(x, 1.0, PIPELINES["color"])  # grey colour ops: out = a * x + b per image
    for o, i in zip(col, x):
        a, b = torch.linalg.lstsq(torch.stack([i.flatten(), torch.ones(i.numel())], 1),
                                  o.flatten().unsqueeze(1)).solution.flatten()
        torch.testing.assert_close(o, a * i + b, atol=1e-5, rtol=0)
    torch.manual_seed(1)
    geo = augment(x, 1.0, PIPELINES["bg"])  # geometry moves pixels, keeps the value range
    assert float(geo.abs().max()) <= float(x.abs().max()) * 1.2


def test_some_images_stay_untouched_at_small_p():
    x = _image(3).repeat(20, 1, 1, 1)
    torch.manual_seed(2)
    out = augment(x, 0.05, BGC)  # P(no op) = 0.95^12 ~ 0.54 per image
    same = sum(torch.equal(o, i) for o, i in zip(out, x))
    assert 30 < same < 100


def test_gradients_flow_through_the_pipeline():
    x = _image(3).requires_grad_(True)
    torch.manual_seed(3)
    augment(x, 1.0, BGC).square().sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert torch.isfinite(x.grad).all()


def test_colour_pipeline_refused_on_two_channel_data():
    from gantk_plugins.augment.ada import check_ada

    class Ctx:
        class data:
            shape = (2, 16, 16)

    with pytest.raises(IncompatibleStackError, match='pipeline = "bg"'):
        check_ada(AdaParams(), Ctx())
    check_ada(AdaParams(pipeline="bg"), Ctx())


# ------------------------------------------------------------------------------ in training


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_logs_p_and_rt_and_resume_continues_p(tmp_path):
    methods = [{"name": "ada", "kimg": 0.05, "interval": 2}]
    spec = tiny_spec("dcgan", methods, device="cpu", steps=16, log_every=2, ckpt_every=8)
    full = tmp_path / "full"
    pipe = Pipeline.from_spec(spec)
    pipe.train(out=full, progress=False)
    rows = _rows(full)
    assert all("ada/p" in r for r in rows) and all("ada/rt" in r for r in rows)
    ps = [r["ada/p"] for r in rows]
    assert max(ps) > 0 and all(0 <= v <= 1 for v in ps)
    assert all(-1 <= r["ada/rt"] <= 1 for r in rows)
    (ada,) = pipe.trainer.d_transforms
    p_end = float(ada.p)

    half = tmp_path / "half"
    Pipeline.from_spec(spec, ["train.steps=8"]).train(out=half, progress=False)
    resumed = Pipeline.from_spec(spec)
    resumed.train(out=half, progress=False)
    (ada2,) = resumed.trainer.d_transforms
    assert float(ada2.p) == p_end  # the checkpoint carried p (and the running sums)
    assert [r["ada/p"] for r in _rows(half)] == ps


def test_ada_stacks_with_r1_and_the_penalty_sees_augmented_reals():
    spec = tiny_spec("dcgan", [{"name": "ada", "p": 1.0, "adaptive": False}, {"name": "r1"}],
                     device="cpu", steps=2)
    pipe = Pipeline.from_spec(spec)
    logs = pipe.train(progress=False)
    assert "r1/r1" in logs and math.isfinite(logs["r1/r1"])


def test_mnist5k_size_keeps_a_class_balanced_subset_the_same_for_every_seed():
    from gantk.datasets.mnist5k import Mnist5kParams, load_mnist5k

    x, y = load_mnist5k(Mnist5kParams(resolution=16, size=500))
    assert x.shape == (500, 1, 16, 16)
    assert torch.bincount(y).tolist() == [50] * 10
    x2, _ = load_mnist5k(Mnist5kParams(resolution=16, size=500))
    assert torch.equal(x, x2)
    full, labels = load_mnist5k(Mnist5kParams(resolution=16))
    assert torch.equal(x[:50], full[labels == 0][:50])  # the first 50 zeros of the file
    _, y23 = load_mnist5k(Mnist5kParams(resolution=16, size=23))
    assert torch.bincount(y23).tolist() == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
