"""ADA, adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data", Sec. 3): the augmentation pipeline of :mod:`.ada_ops` on every image
D sees, reals and fakes, in D and G steps and inside the gradient penalties, with its strength
``p`` steered by an overfitting heuristic.

The controller (NVlabs' ``training_loop.py``): every D update adds ``sign(D(x))`` of its real
batch (the logits the adversarial loss was computed on) to a running sum; after ``interval`` D
updates ``r_t = E[sign(D(reals))]`` over those images and

    p <- clamp(p + sign(r_t - target) * N / (kimg * 1000), 0, 1)

with ``N`` the real images of the interval (``batch * interval``), so ``p`` can move from 0 to 1
in ``kimg`` thousand images. ``r_t`` near 1 means D calls (almost) every real image real: it has
learned the training set; ADA raises ``p`` until ``r_t`` sits at ``target`` (0.6). Under torchrun
the sums are added over the processes first, so every process holds the same ``p``.

``p``, the running sums and the last ``r_t`` are buffers: checkpoints save them and a resumed run
continues the same trajectory. ``ada/p`` and ``ada/rt`` are logged (``step_logs``).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from gantk import BuildContext, DInputTransform, IncompatibleStackError, Regularizer, StepContext

from .ada_ops import COLOUR, PIPELINES, augment


class AdaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pipeline: Literal["bgc", "bg", "blit", "geom", "color"] = Field(
        "bgc", description="NVlabs' --augpipe preset: blit (x-flip, 90-degree rotations, integer "
                           "translation), geom (scaling, rotation, anisotropy, fractional "
                           "translation), color; bg = blit+geom, bgc = all three (the paper's)")
    target: float = Field(0.6, ge=0, le=1, description="the r_t the controller steers to "
                          "(E[sign(D(reals))]; 0.6 in the paper)")
    interval: int = Field(4, ge=1, description="D updates between two adjustments of p")
    kimg: float = Field(500.0, gt=0, description="adjustment speed: thousands of real images for "
                        "p to move by 1 (500 in the paper; 100 for transfer learning)")
    p: float = Field(0.0, ge=0, le=1, description="initial augmentation probability (with "
                     "adaptive = false: the fixed one, NVlabs' --aug=fixed --p)")
    adaptive: bool = Field(True, description="adjust p with the r_t heuristic; false keeps p fixed")


class Ada(DInputTransform, Regularizer):
    """ADA's pipeline as the stack's D-input transform, plus its controller.

    It is a Regularizer too, only to be handed each D update's context (``d_terms``, where it
    reads the logits the loss already computed on the augmented reals); it adds no loss term."""

    def __init__(self, *, params: AdaParams) -> None:
        super().__init__()
        self.params = params
        self.ops = PIPELINES[params.pipeline]
        self.register_buffer("p", torch.tensor(float(params.p)))
        self.register_buffer("sign_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("images", torch.zeros((), dtype=torch.long))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("rt", torch.zeros(()))  # the last interval's r_t (logged when new)
        self._adjusted = False

    # ---------------------------------------------------------------- the D-input transform
    def forward(self, x: Tensor, ctx: StepContext, *, real: bool) -> Tensor:
        p = float(self.p)
        return augment(x, p, self.ops) if p > 0 else x

    # ---------------------------------------------------------------- the controller
    def d_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        if self.params.adaptive:
            self.observe(ctx.real_logits)  # memoised: the loss's own forward on the reals
        return {}

    @torch.no_grad()
    def observe(self, real_logits: Tensor) -> None:
        """Count one D update's real logits; adjust ``p`` every ``interval`` updates."""
        signs = real_logits.detach().float().reshape(len(real_logits), -1).mean(1).sign()
        self.sign_sum += signs.double().sum()
        self.images += len(signs)
        self.updates += 1
        if int(self.updates) >= self.params.interval:
            self.adjust()

    @torch.no_grad()
    def adjust(self) -> None:
        stats = torch.stack([self.sign_sum, self.images.double()])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)  # every process steps p alike
        total, n = float(stats[0]), float(stats[1])
        rt = total / max(n, 1.0)
        step = (1.0 if rt > self.params.target else -1.0 if rt < self.params.target else 0.0)
        self.p.copy_((self.p + step * n / (self.params.kimg * 1000)).clamp(0, 1))
        self.rt.fill_(rt)
        self.sign_sum.zero_()
        self.images.zero_()
        self.updates.zero_()
        self._adjusted = True

    def step_logs(self) -> dict[str, Tensor]:
        logs = {"p": self.p.detach().clone()}
        if self._adjusted:  # r_t of the intervals that ended in this step
            logs["rt"] = self.rt.detach().float().clone()
            self._adjusted = False
        return logs


def check_ada(params: AdaParams, ctx: BuildContext) -> None:
    channels = int(ctx.data.shape[0])
    if channels not in (1, 3) and any(op in COLOUR for op in PIPELINES[params.pipeline]):
        raise IncompatibleStackError(
            f"ada's colour augmentations (pipeline {params.pipeline!r}) act on grey or RGB images, "
            f"and this data has {channels} channels",
            where="methods.ada.pipeline",
            fix='use pipeline = "bg" (geometric only), or data with 1 or 3 channels.')


def build(params: AdaParams, ctx: BuildContext) -> Ada:
    return Ada(params=params)
