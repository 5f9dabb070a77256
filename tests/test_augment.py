"""DiffAugment: each policy does what the paper says, stays differentiable, and reaches D on both
sides of the step; x-flip touches only the data."""

from __future__ import annotations

import torch

from gantk import Pipeline, StepContext
from gantk_plugins.augment import DiffAugment, DiffAugmentParams, color, cutout, translation, xflip
from tiny import tiny_spec


def _index_image(b=6, h=8, w=8):
    return (torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w) + 1).repeat(b, 1, 1, 1)


def test_translation_shifts_each_image_rigidly_with_zero_fill():
    torch.manual_seed(0)
    x = _index_image()
    out = translation(x, 0.25)
    for img in out[:, 0]:
        rows, cols = torch.nonzero(img, as_tuple=True)
        src = img[rows, cols].long() - 1
        dr, dc = src // 8 - rows, src % 8 - cols
        assert len(set(dr.tolist())) == 1 and len(set(dc.tolist())) == 1  # one offset per image
        assert abs(int(dr[0])) <= 2 and abs(int(dc[0])) <= 2  # within ratio * side
        assert len(rows) == (8 - abs(int(dr[0]))) * (8 - abs(int(dc[0])))  # the rest is zero


def test_cutout_zeroes_one_square_of_at_most_ratio_side():
    torch.manual_seed(1)
    out = cutout(torch.ones(50, 1, 8, 8), 0.5)
    for img in out[:, 0]:
        rows, cols = torch.nonzero(img == 0, as_tuple=True)
        assert len(rows) > 0
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert h <= 4 and w <= 4 and len(rows) == h * w  # a (clipped) rectangle, side <= 4


def test_color_changes_brightness_within_the_papers_range():
    torch.manual_seed(2)
    x = torch.zeros(200, 3, 4, 4)
    shift = color(x).mean(dim=(1, 2, 3))  # zero image: only brightness moves the mean
    assert shift.abs().max() <= 0.5 and shift.std() > 0.2


def test_augmentations_are_differentiable():
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    aug = DiffAugment(params=DiffAugmentParams())
    ctx = None
    aug(x, ctx, real=False).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_xflip_acts_on_real_images_only():
    torch.manual_seed(3)
    x = _index_image(b=64)
    aug = DiffAugment(params=DiffAugmentParams(policy=[], xflip=True))
    assert torch.equal(aug(x, None, real=False), x)
    out = aug(x, None, real=True)
    flipped = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, x)])
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert bool((flipped | same).all()) and 10 < int(flipped.sum()) < 54
    assert torch.equal(xflip(x[:0]), x[:0])


def test_d_sees_augmented_reals_and_fakes_and_g_gets_gradients_through_them():
    pipe = Pipeline.from_spec(tiny_spec("dcgan", [{"name": "diffaugment"}], device="cpu"))
    (aug,) = pipe.trainer.d_transforms
    bb = pipe.backbone
    real = pipe.real_data()[0][:8]
    torch.manual_seed(0)
    ctx = StepContext(phase="g", backbone=bb, loss=pipe.loss, step=1,
                      z=bb.sample_latent(8), y=None, real=real, d_transforms=(aug,))
    assert not torch.allclose(ctx.real_features, bb.discriminator.features(real))
    pipe.loss.g_loss(ctx.fake_logits).backward()
    grads = [p.grad for p in bb.generator.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    logs = pipe.train(steps=2, progress=False)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
