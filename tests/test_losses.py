"""Losses and penalties on hand-computed values."""

from __future__ import annotations

import math

import torch

from gantk_plugins.losses import (gradient_penalty, hinge_d_loss, hinge_g_loss, lsgan_d_loss,
                                  lsgan_g_loss, ns_d_loss, ns_g_loss, r1_penalty, wgan_d_loss,
                                  wgan_g_loss)

REAL = torch.tensor([2.0, 0.0])
FAKE = torch.tensor([-1.0, 0.5])


def sp(x: float) -> float:
    return math.log1p(math.exp(x))


def test_ns():
    expect = (sp(-2) + sp(0)) / 2 + (sp(-1) + sp(0.5)) / 2
    assert math.isclose(ns_d_loss(REAL, FAKE).item(), expect, rel_tol=1e-6)
    assert math.isclose(ns_g_loss(FAKE).item(), (sp(1) + sp(-0.5)) / 2, rel_tol=1e-6)


def test_hinge_wgan_lsgan():
    assert math.isclose(hinge_d_loss(REAL, FAKE).item(), (0 + 1) / 2 + (0 + 1.5) / 2)
    assert math.isclose(hinge_g_loss(FAKE).item(), 0.25)
    assert math.isclose(wgan_d_loss(REAL, FAKE).item(), -0.25 - 1.0)
    assert math.isclose(wgan_g_loss(FAKE).item(), 0.25)
    assert math.isclose(lsgan_d_loss(REAL, FAKE).item(), 0.5 * (1 + 1) / 2 + 0.5 * (1 + 0.25) / 2)
    assert math.isclose(lsgan_g_loss(FAKE).item(), 0.5 * (4 + 0.25) / 2)


def test_penalties_on_a_linear_critic():
    """D(x) = <w, x>: the input gradient is w everywhere, so GP = (|w| - 1)^2, R1 = |w|^2."""
    w = torch.tensor([3.0, 4.0])

    def D(x, y=None):
        return x @ w

    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    assert math.isclose(gradient_penalty(D, real, fake, None).item(), 16.0, rel_tol=1e-5)
    assert math.isclose(r1_penalty(D, real, None).item(), 25.0, rel_tol=1e-5)


# ------------------------------------------------------------------------------ through augmentation


def _d_context(methods, loss="ns"):
    from gantk import Pipeline
    from tiny import tiny_spec

    spec = tiny_spec("dcgan", methods, device="cpu")
    spec["loss"] = {"name": loss}
    pipe = Pipeline.from_spec(spec)
    real = pipe.real_data()[0][:6]
    ctx = pipe.trainer.context("d", 1, real, None)
    comp = {c.entry_name: c for c in pipe.components}
    return pipe, ctx, comp


def _r1_by_hand(D, real, augment, gamma):
    x = real.detach().requires_grad_(True)
    out = D(augment(x), None)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return gamma / 2 * grad.pow(2).flatten(1).sum(1).mean()


def _assert_r1_through(methods, augment):
    pipe, ctx, comp = _d_context(methods)
    torch.manual_seed(11)
    got = comp["r1"].d_terms(ctx)["r1"]
    torch.manual_seed(11)
    want = _r1_by_hand(ctx.D, ctx.real, augment, gamma=10.0)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    plain = 5.0 * r1_penalty(ctx.D, ctx.real, None)  # the value on un-augmented reals
    assert not torch.isclose(got, plain, rtol=1e-3)
    got.backward()  # differentiable twice, through the augmentation
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0
               for p in pipe.backbone.discriminator.parameters())


def test_r1_is_taken_through_diffaugment():
    from gantk_plugins.augment import diff_augment

    _assert_r1_through([{"name": "diffaugment"}, {"name": "r1"}],
                       lambda x: diff_augment(x, ["color", "translation", "cutout"]))


def test_r1_is_taken_through_ada():
    from gantk_plugins.augment.ada_ops import PIPELINES, augment

    _assert_r1_through([{"name": "ada", "p": 1.0, "adaptive": False}, {"name": "r1"}],
                       lambda x: augment(x, 1.0, PIPELINES["bgc"]))


def test_gradient_penalty_is_taken_through_ada_on_the_interpolates():
    from gantk_plugins.augment.ada_ops import PIPELINES, augment

    _, ctx, comp = _d_context([{"name": "ada", "p": 1.0, "adaptive": False}, {"name": "gp"}],
                              loss="wgan")
    fake = ctx.fake  # G's forward first, outside the seeded draws
    torch.manual_seed(12)
    got = comp["gp"].d_terms(ctx)["gp"]
    torch.manual_seed(12)
    eps = torch.rand(len(ctx.real), 1, 1, 1)
    x_hat = (eps * ctx.real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(ctx.D(augment(x_hat, 1.0, PIPELINES["bgc"]), None).sum(), x_hat)
    want = 10.0 * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    torch.manual_seed(12)
    assert not torch.isclose(got, 10.0 * gradient_penalty(ctx.D, ctx.real, fake, None), rtol=1e-3)


def test_penalty_through_a_translation_on_a_linear_critic():
    """D(x) = <w, T(x)> with T a fixed shift right by one pixel (zero fill): grad_x = T^T w, in
    which w's first column (it only ever sees the fill) is missing: R1 = |w|^2 - |w[:, 0]|^2."""
    w = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)

    def D(x, y=None):
        return (x * w).flatten(1).sum(1)

    def shift(x):  # output column j reads input column j - 1
        return torch.nn.functional.pad(x, (1, 0))[..., :4]

    real = torch.randn(3, 1, 4, 4)
    expect = float(w.pow(2).sum() - w[..., 0].pow(2).sum())  # column 0 of w sees the zero fill
    assert math.isclose(r1_penalty(D, real, None, through=shift).item(), expect, rel_tol=1e-6)
    assert math.isclose(r1_penalty(D, real, None).item(), float(w.pow(2).sum()), rel_tol=1e-6)
