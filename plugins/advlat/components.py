"""AdvLatGAN's components: the I-FGSM latent transform (z*, qua) and the mode-seeking regularisers
(div with the Eq. 8 hard pair, and plain MSGAN on random pairs).

None of them stores a network: G and D are reached through the step context, and the searches
differentiate with respect to ``z`` only (``torch.autograd.grad``), so no parameter's ``.grad`` is
touched by a search. The components are stateless between steps (nothing to checkpoint).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from gantk import LatentTransform, Regularizer, StepContext

from .search import hard_pair_search, ifgsm, mode_seeking_term, pair_start, search_state

NetworkMode = Literal["current", "eval", "train"]

_MODE_TEXT = ("network mode during the search: 'current' keeps the phase's mode (train mode in "
              "training, eval at sampling), 'eval' or 'train' force one")
_RESTORE_TEXT = ("put BatchNorm running statistics and spectral-norm power-iteration vectors back "
                 "after the search, so the search's extra forwards leave the nets unchanged")


# ----------------------------------------------------------------------------- params


class _SearchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(1, ge=0, le=100_000, description="I-FGSM iterations n")
    step_size: float = Field(0.01, gt=0, description="I-FGSM step epsilon of Eq. 6")
    radius: float | None = Field(None, gt=0, description="l_inf radius of Eq. 5's ball around z0, "
                                 "projected onto after every step; None: the implicit radius "
                                 "steps * step_size (Eq. 6 without projection)")
    network_mode: NetworkMode = Field("current", description=_MODE_TEXT)
    restore_buffers: bool = Field(True, description=_RESTORE_TEXT)
    clamp_to_prior: bool = Field(True, description="with a uniform prior, keep z* inside [-1, 1]")


class AdvLatZParams(_SearchParams):
    """AdvLatGAN-z: post-training transform z* (Eq. 5-6), App. E.4: 100 steps of 0.01."""

    steps: int = Field(100, ge=0, le=100_000, description="I-FGSM iterations n (App. E.4: 100 on CIFAR-10/STL-10)")


class AdvLatQuaParams(_SearchParams):
    """AdvLatGAN-qua (Algorithm 1): the z* search on the latents of D updates."""

    steps: int = Field(1, ge=0, le=100_000, description="I-FGSM iterations t_z per D update (one in training)")


class _MSParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ms_weight: float = Field(1.0, ge=0, description="lambda_ms of Eq. 4 (weight of the "
                             "1 / (ratio + eps) loss; MSGAN's default 1)")
    ms_eps: float = Field(1e-5, gt=0, description="eps in MSGAN's 1 / (d_I / d_z + eps)")


class MSGANParams(_MSParams):
    """MSGAN (Mao et al. 2019): the mode-seeking term on random latent pairs."""


class AdvLatDivParams(_MSParams):
    """AdvLatGAN-div (Algorithm 2): the mode-seeking term on the Eq. 8 hard pair."""

    steps: int = Field(3, ge=0, le=100_000, description="I-FGSM iterations t_z of the pair search (App. G.3: 3)")
    step_size: float = Field(0.01, gt=0, description="I-FGSM step epsilon (App. G.3: 0.01)")
    radius: float | None = Field(None, gt=0, description="l_inf radius of the ball around z0, "
                                 "projected onto every step; None: implicit")
    start: Literal["gaussian", "uniform", "prior"] = Field(
        "gaussian", description="where the pair search starts: z0 + N(0, start_scale^2) "
        "(the authors' code), z0 + U(-start_scale, start_scale), or a fresh prior draw")
    start_scale: float = Field(0.08, ge=0, description="size of the starting neighbourhood of z0")
    ratio_stabiliser: float = Field(1e-5, ge=0, description="added to d_z in Eq. 8's denominator "
                                    "during the search (the authors' code uses 1)")
    per_sample_ratio: bool = Field(True, description="search each pair on its own ratio (True) or "
                                   "on the batch-mean ratio of the MSGAN form (False)")
    inverse: bool = Field(False, description="maximise the ratio instead (Table 1's Eq. 8-inv, "
                          "an ablation; not the method)")
    network_mode: NetworkMode = Field("current", description=_MODE_TEXT)
    restore_buffers: bool = Field(True, description=_RESTORE_TEXT)
    clamp_to_prior: bool = Field(True, description="with a uniform prior, keep z* inside [-1, 1]")


# ----------------------------------------------------------------------------- components


def _bounds(ctx: StepContext, clamp: bool) -> tuple[float, float] | None:
    return (-1.0, 1.0) if clamp and ctx.backbone.prior == "uniform" else None


def generator_loss_search(z: Tensor, ctx: StepContext, *, steps: int, step_size: float,
                          radius: float | None, network_mode: str, restore_buffers: bool,
                          clamp_to_prior: bool) -> Tensor:
    """z*(z) of Eq. 5-6 with the stack's generator loss L_G(D(G(z, y), y)); G and D frozen."""

    if steps == 0:
        return z
    G, D, y = ctx.G, ctx.D, ctx.y

    def objective(zz: Tensor) -> Tensor:
        return ctx.loss.g_loss(D(G(zz, y), y))

    with search_state([G, D], mode=network_mode, restore_buffers=restore_buffers):
        return ifgsm(z, objective, steps=steps, step_size=step_size, radius=radius,
                     bounds=_bounds(ctx, clamp_to_prior))


class LatentSearch(LatentTransform):
    """I-FGSM on the generator loss (Eq. 5-6), active in ``phases``: ``{"sample"}`` for
    AdvLatGAN-z, ``{"d"}`` for AdvLatGAN-qua (Algorithm 1: only D updates see searched latents)."""

    def __init__(self, *, params: _SearchParams, phases: frozenset[str]) -> None:
        super().__init__()
        self.params = params
        self.phases = frozenset(phases)

    def forward(self, z: Tensor, ctx: StepContext) -> Tensor:
        p = self.params
        out = generator_loss_search(z, ctx, steps=p.steps, step_size=p.step_size, radius=p.radius,
                                    network_mode=p.network_mode, restore_buffers=p.restore_buffers,
                                    clamp_to_prior=p.clamp_to_prior)
        ctx.cache[f"{self.entry_name}/shift_linf"] = (out - z).abs().amax().detach()
        return out

    def extra_repr(self) -> str:
        return f"phases={sorted(self.phases)}, {self.params!r}"


class ModeSeeking(Regularizer):
    """The mode-seeking term in the G update (Eq. 3-4) on pairs ``(z0, z2)`` with ``z0`` the
    latents G was given this step (``ctx.z_in``) and ``G(z0) = ctx.fake``. ``msgan`` draws ``z2``
    from the prior; ``advlat_div`` searches it near ``z0`` by Eq. 8 (Algorithm 2)."""

    def __init__(self, *, params: _MSParams, hard_pair: bool) -> None:
        super().__init__()
        self.params = params
        self.hard_pair = hard_pair

    def partner(self, z0: Tensor, x0: Tensor, ctx: StepContext) -> Tensor:
        """The second latent of each pair."""

        bb = ctx.backbone
        if not self.hard_pair:
            return bb.sample_latent(z0.shape[0], device=z0.device)
        p: AdvLatDivParams = self.params  # type: ignore[assignment]
        start = pair_start(z0, how=p.start, scale=p.start_scale,
                           prior=lambda n: bb.sample_latent(n, device=z0.device))
        bounds = _bounds(ctx, p.clamp_to_prior)
        if bounds is not None:
            start = start.clamp(*bounds)
        G, y = ctx.G, ctx.y
        with search_state([G], mode=p.network_mode, restore_buffers=p.restore_buffers):
            return hard_pair_search(lambda z: G(z, y), z0, x0, steps=p.steps,
                                    step_size=p.step_size, start=start, radius=p.radius,
                                    stabiliser=p.ratio_stabiliser,
                                    per_sample=p.per_sample_ratio, inverse=p.inverse,
                                    bounds=bounds)

    def g_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        z0 = (ctx.z if ctx.z_in is None else ctx.z_in).detach()
        x0 = ctx.fake
        z2 = self.partner(z0, x0.detach(), ctx)
        x2 = ctx.G(z2, ctx.y)
        term = mode_seeking_term(x0, x2, z0, z2, eps=self.params.ms_eps)
        return {"ms": self.params.ms_weight * term}

    def extra_repr(self) -> str:
        return f"hard_pair={self.hard_pair}, {self.params!r}"
