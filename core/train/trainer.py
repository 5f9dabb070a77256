"""The trainer: the one place that orders a training step.

::

    D step (n_critic times):  x, y ~ data;  z ~ prior;  z' = transforms["d"](z)  (no grad to params)
                              fake = G(z', y).detach()
                              L_D = loss.d_loss(D(x), D(fake)) + sum of regularizers' d_terms
    G step:                   z ~ prior;  z' = transforms["g"](z);  fake = G(z', y)
                              L_G = loss.g_loss(D(fake)) + sum of regularizers' g_terms
                              (the G step sees the last D step's real batch, for reconstruction terms)
    aux step:                 each component with aux_parameters() steps its own optimiser
    EMA:                      G_ema <- beta * G_ema + (1 - beta) * G    (beta: gantk.train.ema.beta)

Each phase's latents and fake labels come from a stream of their own, a pure function of (seed,
step, phase), so runs of one seed draw the same ones whatever their methods add (the pairing a
sweep compares seeds by); the rest of the randomness comes from the global torch RNG (saved in
checkpoints) and the data stream's own generator, so a resumed run reproduces the uninterrupted
one on CPU. A non-finite loss stops the
run before any optimiser step of that step is taken, so the last checkpoint stays good.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol

import torch
from torch import Tensor

from . import ema
from ..base.errors import NONFINITE_FIX, TrainingError
from ..base.interfaces import (Backbone, Component, DInputTransform, LatentTransform, Loss,
                               Regularizer, StepContext)
from .optimizers import make_optimizer, param_groups
from .precision import Precision


class BuiltStack(Protocol):
    """What the trainer reads of a built stack (a :class:`gantk.Pipeline` is one): the step sits
    below the facade, so it names the parts it uses instead of importing the Pipeline."""

    spec: Any                      # .train: the train.* settings
    backbone: Backbone
    loss: Loss | None
    components: list[Component]
    ema: torch.nn.Module | None
    world: Any                     # gantk.train.distributed.World
    device: torch.device


def apply_transforms(transforms: Iterable[LatentTransform], z: Tensor, ctx: StepContext) -> Tensor:
    """Apply, in stack order, every transform active in ``ctx.phase``."""
    for t in transforms:
        if ctx.phase in t.phases:
            z = t(z, ctx)
    return z


class Trainer:
    def __init__(self, pipe: BuiltStack) -> None:
        self.pipe = pipe
        train = pipe.spec.train
        bb = pipe.backbone
        self.transforms = [c for c in pipe.components if isinstance(c, LatentTransform)]
        self.regularizers = [c for c in pipe.components if isinstance(c, Regularizer)]
        self.d_transforms = tuple(c for c in pipe.components if isinstance(c, DInputTransform))
        over = bb.optimizer_overrides()
        g_items = list(bb.g_param_groups(train.lr_g))
        for c in pipe.components:
            g_items += list(c.g_parameters())
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "g": make_optimizer(param_groups(g_items, train.lr_g), train, lr=train.lr_g,
                                override=over.get("g"))}
        if bb.discriminator is not None or any(list(c.d_parameters()) for c in pipe.components):
            d_items = list(bb.d_parameters())
            for c in pipe.components:
                d_items += list(c.d_parameters())
            groups = param_groups(d_items, train.lr_d)
            if groups:
                self.optimizers["d"] = make_optimizer(groups, train, lr=train.lr_d,
                                                      override=over.get("d"))
        self.aux: list[tuple[str, Component]] = []
        for i, c in enumerate(pipe.components):
            params = list(c.aux_parameters())
            if params:
                name = f"aux{i}.{c.entry_name}"
                self.optimizers[name] = (c.make_aux_optimizer(params, train)
                                         or make_optimizer(param_groups(params, train.lr_g), train,
                                                           lr=train.lr_g))
                self.aux.append((name, c))
        self.has_d_step = "d" in self.optimizers
        self._d_params = list(bb.d_parameters())
        self.last_real: tuple[Tensor, Tensor | None] | None = None
        self.world = pipe.world  # under torchrun: shares, shared draws, gradient averaging
        self.precision = Precision(train.precision, pipe.device)

    # ------------------------------------------------------------------ helpers
    def _labels_for_fakes(self, n: int, real_y: Tensor | None, step: int, stream: int
                          ) -> Tensor | None:
        bb = self.pipe.backbone
        if not bb.num_classes:
            return None
        if real_y is not None and len(real_y) == n:
            return real_y
        return self.world.draw_paired(
            lambda m: torch.randint(bb.num_classes, (m,), device=self.pipe.device),
            self._global(n), step=step, stream=2 * stream + 1)

    def _global(self, n: int) -> int:
        """The global batch a rank's ``n`` samples are a share of."""
        return self.pipe.spec.train.batch_size if self.world.size > 1 else n

    def context(self, phase: str, step: int, real: Tensor | None = None,
                real_y: Tensor | None = None, *, stream: int = 0) -> StepContext:
        """The context of one phase exactly as the step builds it (public: what a test or tool that
        needs a step's context uses). Its latents (and fake labels) come from the paired stream
        ``stream`` of this step (:meth:`gantk.train.distributed.World.draw_paired`); in the ``d``
        and ``g`` phases the stack's latent transforms are applied, in ``d`` without gradients
        and with the fakes detached (D's update must not reach G or the transforms)."""
        bb = self.pipe.backbone
        n = len(real) if real is not None else self.pipe.spec.train.batch_size
        y = self._labels_for_fakes(n, real_y if phase == "d" else None, step, stream)
        z = self.world.draw_paired(lambda m: bb.sample_latent(m, device=self.pipe.device),
                                   self._global(n), step=step, stream=2 * stream)
        ctx = StepContext(phase=phase, backbone=bb, loss=self.pipe.loss, step=step, z=z, y=y,
                          real=real, real_y=real_y, d_transforms=self.d_transforms,
                          z_in=z if phase in ("d", "g") else None, _grad_fake=phase != "d")
        if phase == "d" and self.transforms:
            with torch.no_grad():
                ctx.z_in = apply_transforms(self.transforms, z, ctx)
        elif phase == "g" and self.transforms:
            ctx.z_in = apply_transforms(self.transforms, z, ctx)
        return ctx

    def _terms(self, comps: Iterable[Component], method: str, ctx: StepContext) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for c in comps:
            for key, value in getattr(c, method)(ctx).items():
                out[f"{c.entry_name}/{key}"] = value
        return out

    @staticmethod
    def _stop_nonfinite(step: int, phase: str, values: dict[str, Tensor]) -> None:
        bad = {k: float(v.detach()) for k, v in values.items()
               if not torch.isfinite(v.detach()).all()}
        raise TrainingError(
            f"at step {step} ({phase} update) the loss became non-finite"
            + (" on another process" if not bad else ": ")
            + ", ".join(f"{k} = {v}" for k, v in bad.items()),
            where=f"training step {step}",
            fix="no update of this step was applied; lower train.lr_d / train.lr_g, reduce the "
                "offending term's weight, or check the data's value range. " + NONFINITE_FIX)

    def _update(self, step: int, phase: str, opt: torch.optim.Optimizer,
                values: dict[str, Tensor], logs: dict[str, Tensor]) -> None:
        """Check the terms (one scalar read of their sum, which a NaN or inf term makes
        non-finite), then one backward of the sum and one optimiser step. Under torchrun the
        gradients are averaged over the processes first (one all-reduce that also tells whether
        every process's losses were finite; if not, no process steps)."""
        world = self.world
        first, *rest = values.values()
        total = sum(rest, first)  # the terms' sum in their order
        finite = math.isfinite(total.item()) or bool(torch.isfinite(torch.stack(
            [v.detach().float().reshape(()) for v in values.values()])).all())
        if not finite and world.size == 1:
            self._stop_nonfinite(step, phase, values)  # raises, naming the terms
        opt.zero_grad(set_to_none=True)
        if finite:
            self.precision.backward(total, opt)
        if world.size > 1:
            params = [p for g in opt.param_groups for p in g["params"]]
            n = len(self.last_real[0]) if self.last_real is not None else 1
            if not world.average_gradients(params, finite, weight=n / self._global(n)):
                self._stop_nonfinite(step, phase, values)
        self.precision.step(opt)
        logs.update({k: v.detach() for k, v in values.items()})

    # ------------------------------------------------------------------ one step
    def step(self, step: int, stream: Iterable[tuple[Tensor, Tensor | None]]) -> dict[str, Tensor]:
        with self.precision.around_step:  # bf16/fp16: autocast; fp32: enters nothing
            return self._step(step, stream)

    def _step(self, step: int, stream: Iterable[tuple[Tensor, Tensor | None]]) -> dict[str, Tensor]:
        pipe, bb, loss = self.pipe, self.pipe.backbone, self.pipe.loss
        train = pipe.spec.train
        logs: dict[str, Tensor] = {}
        it = iter(stream)

        # ---- D updates
        for i in range(train.n_critic if self.has_d_step else 1):
            real, real_y = next(it)
            self.last_real = (real, real_y)
            if not self.has_d_step:
                break
            ctx = self.context("d", step, real, real_y, stream=i)
            values: dict[str, Tensor] = {}
            if bb.discriminator is not None:
                values["loss/d"] = loss.d_loss(ctx.real_logits, ctx.fake_logits)
            values.update(self._terms(self.regularizers, "d_terms", ctx))
            self._update(step, "D", self.optimizers["d"], values, logs)
            if "real_logits" in ctx.cache:
                logs["d/real"] = ctx.cache["real_logits"].detach().mean()
                logs["d/fake"] = ctx.cache["fake_logits"].detach().mean()

        # ---- G update (D frozen: its gradients are not needed)
        real, real_y = self.last_real
        for p in self._d_params:
            p.requires_grad_(False)
        try:
            ctx = self.context("g", step, real, real_y, stream=train.n_critic)
            values = {}
            if bb.discriminator is not None:
                values["loss/g"] = loss.g_loss(ctx.fake_logits)
            values.update(self._terms(self.regularizers, "g_terms", ctx))
            if not values:
                raise TrainingError("nothing in this stack gives the generator a loss",
                                    where="stack", fix="add a method that trains G.")
            self._update(step, "G", self.optimizers["g"], values, logs)
        finally:
            for p in self._d_params:
                p.requires_grad_(True)

        # ---- components with objectives of their own
        for j, (name, comp) in enumerate(self.aux):
            ctx = self.context("aux", step, real, real_y, stream=train.n_critic + 1 + j)
            values = {f"{comp.entry_name}/{k}": v for k, v in comp.aux_terms(ctx).items()}
            if values:
                self._update(step, "aux", self.optimizers[name], values, logs)

        if pipe.ema is not None:
            ema.update(pipe.ema, bb.generator, ema.beta(train, step))
        for comp in pipe.components:
            comp.on_step_end(ctx)
            logs.update({f"{comp.entry_name}/{k}": v for k, v in comp.step_logs().items()})
        return logs
