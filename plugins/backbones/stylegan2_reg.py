"""StyleGAN2's path-length regulariser (Karras et al. 2020, Sec. 3.2), registered as ``path_length``.

``E_{w, y ~ N(0, I)} (||J_w^T y||_2 - a)^2``: for random image-space directions y (scaled by
1/sqrt(H W) so the norm does not grow with the resolution), the length of J_w^T y, the gradient of
<G(w), y> with respect to the per-layer w, should stay at a constant a, the running mean of the
lengths (decay 0.01). A G-phase term, lazy: computed on every ``every``-th G step, on a batch
shrunk by ``batch_shrink``, and multiplied by ``every`` so that its average weight is unchanged.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field
import torch
from torch import Tensor

from gantk import BuildContext, IncompatibleStackError, Regularizer, StepContext, float32_under_fp16


def path_lengths(img: Tensor, ws: Tensor) -> Tensor:
    """||J_w^T y||_2 per sample, for one random y ~ N(0, I) / sqrt(H W); differentiable."""

    noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    return grad.pow(2).sum(2).mean(1).sqrt()


def path_length_penalty(lengths: Tensor, mean_length: Tensor, decay: float) -> tuple[Tensor, Tensor]:
    """The penalty (lengths - a)^2 with a updated from ``mean_length`` by ``decay``; returns
    (penalty, new a). The new a is detached: it is a target, not a path for gradients."""

    target = mean_length + decay * (lengths.detach().mean() - mean_length)
    return (lengths - target).pow(2).mean(), target


class PathLengthParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight: float = Field(2.0, ge=0, description="w_pl, the penalty weight (2 in the paper)")
    every: int = Field(4, ge=1, description="lazy regularisation: apply every N G steps, scaled by N "
                       "(must equal backbone.g_reg_every, which rescales G's optimiser)")
    decay: float = Field(0.01, gt=0, le=1, description="decay of the running mean a of path lengths")
    batch_shrink: int = Field(2, ge=1, description="use batch_size // batch_shrink samples for the term")


class PathLength(Regularizer):
    def __init__(self, *, params: PathLengthParams) -> None:
        super().__init__()
        self.params = params
        # the running mean a travels with checkpoints (a buffer), so resumed runs keep their target
        self.register_buffer("mean_length", torch.zeros(()))

    def g_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        # the schedule follows the step number, so a resumed run regularises on the same steps
        if (ctx.step - 1) % self.params.every:
            return {}
        z = ctx.z if ctx.z_in is None else ctx.z_in
        n = max(1, z.shape[0] // self.params.batch_shrink)
        y = None if ctx.y is None else ctx.y[:n]
        with float32_under_fp16():  # the inner gradient underflows in fp16
            img, ws = ctx.G(z[:n], y, return_ws=True)
            lengths = path_lengths(img, ws)
        penalty, target = path_length_penalty(lengths, self.mean_length, self.params.decay)
        self.mean_length.copy_(target)
        return {"path_length": self.params.weight * self.params.every * penalty}


def check(params: PathLengthParams, ctx: BuildContext) -> None:
    """Refuse an interval that differs from the one G's optimiser was rescaled for."""

    every = getattr(getattr(ctx.backbone, "params", None), "g_reg_every", None)
    if every is not None and every != params.every:
        raise IncompatibleStackError(
            f"path_length.every = {params.every} but backbone.g_reg_every = {every}; G's optimiser is "
            "rescaled for the backbone's interval", where="methods.path_length.every",
            fix=f"set backbone.g_reg_every = {params.every} (or path_length every = {every}).")


def build(params: PathLengthParams, ctx: BuildContext) -> PathLength:
    return PathLength(params=params)
