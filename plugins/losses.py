"""Adversarial losses (``ns``, ``hinge``, ``wgan``, ``lsgan``) and the D regularisers ``gp`` and ``r1``.

The penalties call D on the images as D sees them in the loss: through the stack's D-input
transforms (``diffaugment``, ``ada``), differentiating through the augmentation.

Losses are pure functions of logits; the classes only bind them to the Loss interface.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from gantk import (BuildContext, IncompatibleStackError, Loss, Regularizer, StepContext,
                   float32_under_fp16, hookimpl)

# ----------------------------------------------------------------------------- pure functions


def ns_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """-log D(x) - log(1 - D(G(z))) with D = sigmoid(logit)."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def ns_g_loss(fake: Tensor) -> Tensor:
    """The non-saturating generator loss -log D(G(z))."""
    return F.softplus(-fake).mean()


def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g_loss(fake: Tensor) -> Tensor:
    return -fake.mean()


def wgan_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def wgan_g_loss(fake: Tensor) -> Tensor:
    return -fake.mean()


def lsgan_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Least squares with targets 1 (real) and 0 (fake) (Mao et al. 2017)."""
    return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()


def lsgan_g_loss(fake: Tensor) -> Tensor:
    return 0.5 * ((fake - 1) ** 2).mean()


class _PairLoss(Loss):
    def __init__(self, d_fn, g_fn, name: str) -> None:
        self._d, self._g, self.name = d_fn, g_fn, name

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return self._d(real_logits, fake_logits)

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return self._g(fake_logits)

    def __repr__(self) -> str:
        return f"Loss({self.name})"


LOSSES = {
    "ns": (ns_d_loss, ns_g_loss, "non-saturating logistic loss (Goodfellow et al. 2014)"),
    "hinge": (hinge_d_loss, hinge_g_loss, "hinge loss (Lim & Ye 2017; SNGAN)"),
    "wgan": (wgan_d_loss, wgan_g_loss, "Wasserstein critic loss (Arjovsky et al. 2017); pair with gp"),
    "lsgan": (lsgan_d_loss, lsgan_g_loss, "least-squares loss (Mao et al. 2017)"),
}

# ----------------------------------------------------------------------------- regularisers


def _identity(x: Tensor) -> Tensor:
    return x


def gradient_penalty(D, real: Tensor, fake: Tensor, y: Tensor | None, *, center: float = 1.0,
                     through: Callable[[Tensor], Tensor] = _identity) -> Tensor:
    """WGAN-GP: E[(||grad_x D(T(x_hat))||_2 - center)^2] on random interpolates x_hat, where
    ``through`` is T, the stack's D-input transforms (augmentation; identity without any): the
    gradient is taken with respect to the interpolate, through the augmentation."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    with float32_under_fp16():  # the inner gradient underflows in fp16
        out = D(through(x_hat), y)
        (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
        return ((grad.flatten(1).norm(2, dim=1) - center) ** 2).mean()


def r1_penalty(D, real: Tensor, y: Tensor | None, *,
               through: Callable[[Tensor], Tensor] = _identity) -> Tensor:
    """R1 (Mescheder et al. 2018): E[||grad_x D(T(x))||^2] on real data x (without the gamma/2),
    with ``through`` = T the stack's D-input transforms: as in StyleGAN2-ADA's and DiffAugment's
    code, D scores the augmented reals and the gradient is taken with respect to the real images
    before augmentation."""
    real = real.detach().requires_grad_(True)
    with float32_under_fp16():  # the inner gradient underflows in fp16
        out = D(through(real), y)
        (grad,) = torch.autograd.grad(out.sum(), real, create_graph=True)
        return grad.pow(2).flatten(1).sum(1).mean()


class GPParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight: float = Field(10.0, ge=0, description="lambda of WGAN-GP")
    center: float = Field(1.0, description="target gradient norm")


class GradientPenalty(Regularizer):
    def __init__(self, *, params: GPParams) -> None:
        super().__init__()
        self.params = params

    def d_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        # the interpolates pass the stack's D-input transforms as the fakes do (no data x-flip)
        gp = gradient_penalty(ctx.D, ctx.real, ctx.fake, ctx.y, center=self.params.center,
                              through=lambda x: ctx.d_input(x, real=False))
        return {"gp": self.params.weight * gp}


class R1Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gamma: float = Field(10.0, ge=0, description="R1 weight gamma (the term is gamma/2 * penalty)")
    every: int = Field(1, ge=1, description="lazy regularisation: apply every N D steps, scaled by N")


class R1(Regularizer):
    def __init__(self, *, params: R1Params) -> None:
        super().__init__()
        self.params = params
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))  # survives checkpoints

    def d_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        self.calls += 1
        if (int(self.calls) - 1) % self.params.every:
            return {}
        penalty = r1_penalty(ctx.D, ctx.real, ctx.real_y,
                             through=lambda x: ctx.d_input(x, real=True))
        return {"r1": self.params.gamma / 2 * penalty * self.params.every}


def check_r1(params: R1Params, ctx: BuildContext) -> None:
    """Refuse a lazy interval that differs from the one the backbone declares for D's lazy
    regulariser (stylegan2's ``d_reg_every``, which its optimiser settings are built for)."""

    every = getattr(getattr(ctx.backbone, "params", None), "d_reg_every", None)
    if every and every != params.every:
        raise IncompatibleStackError(
            f"r1.every = {params.every} but backbone.d_reg_every = {every}: the backbone's D "
            "optimiser (its lazy_rescale and the paper's settings) is set up for R1 every "
            f"{every} D steps, and a different schedule would silently train another recipe",
            where="methods.r1.every",
            fix=f"set r1 every = {every} (the paper's lazy R1), or backbone.d_reg_every = "
                f"{params.every} to declare the interval you want.")


@hookimpl
def gantk_register(register) -> None:
    for name, (d_fn, g_fn, summary) in LOSSES.items():
        register.loss(name, lambda params, _d=d_fn, _g=g_fn, _n=name: _PairLoss(_d, _g, _n),
                      summary=summary)
    register.regularizer("gp", lambda params, ctx: GradientPenalty(params=params), params=GPParams,
                         summary="WGAN-GP gradient penalty on real/fake interpolates",
                         paper="Gulrajani et al. 2017", needs=["discriminator"])
    register.regularizer("r1", lambda params, ctx: R1(params=params), params=R1Params,
                         summary="R1 gradient penalty on real data, optionally lazy",
                         paper="Mescheder et al. 2018", needs=["discriminator"], check=check_r1)
