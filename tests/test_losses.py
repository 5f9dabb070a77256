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
