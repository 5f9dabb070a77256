"""The reverser R (Sec. 2.1-2.2, Algorithms 1-2 of App. K): a D-family encoder from images to z.

* ``mode = "separate"``: after G and D are trained, R is fitted on MSE(R(G(z)), z) with G frozen
  (Algorithm 1, lines 8-11); samples are G(R(G(z))). It is a sample-time transform: add it to any
  trained run with ``pipe.sample(n, with_=["reverser"])`` / ``gantk sample RUN --with reverser``.
  R is fitted when attached (or, as a stack member, when ``train`` ends) and cached beside the run
  in ``RUN_DIR/reverser/`` keyed by its options and the checkpoint step, so repeated calls reuse it.
* ``mode = "iterative"``: R is trained end to end with G and D (Algorithm 2). Each batch and phase
  trains one iteration t in 0..N_R, drawn in proportion to how often Algorithm 2 trains it;
  z_t = R(G(z_(t-1))) with the images detached; G trains on G(z_t); R's loss is
  lambda_R^(1+t) MSE(z_t, z_0) + (1 - lambda_R^(1+t)) L_G. At sampling all N_R iterations run.
"""

from __future__ import annotations

import hashlib
import json
import sys
import weakref
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from gantk import LatentTransform, Regularizer, StepContext, is_main

from .equations import draw_trained_iteration, scale_grad, similarity_loss

CACHE_KEY = "reverser.chain"
#: fitted R-separate weights per live pipeline (sample(with_=...) rebuilds the component each call)
_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class ReverserParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["separate", "iterative"] = Field("separate", description="'separate': fit R after "
                                                   "training, sample G(R(G(z))) (Sec. 2.1); "
                                                   "'iterative': train R with G and D (Sec. 2.2)")
    similarity_weight: float = Field(0.9, ge=0, le=1, description="lambda_R of R-iterative: "
                                     "iteration t's loss is lambda_R^(1+t) MSE + (1-lambda_R^(1+t)) L_G")
    iterations: int = Field(3, ge=1, le=8, description="N_R, R+G iterations of R-iterative "
                            "(the paper's run uses 3)")
    steps: int = Field(1000, ge=1, le=10_000_000, description="R-separate: R's training batches (paper: 2.5k)")
    batch_size: int | None = Field(None, ge=1, le=65_536, description="R-separate batch size; default: "
                                   "train.batch_size")
    lr: float = Field(5e-4, gt=0, description="R-separate learning rate (the paper's 0.0005)")
    optimizer: Literal["rmsprop", "adam"] = Field("rmsprop", description="R-separate optimiser "
                                                  "(RMSprop in the paper)")
    dropout: float = Field(0.1, ge=0, lt=1, description="spatial dropout after every conv layer of R "
                           "but the first (the paper's 10%); plain dropout after hidden linear "
                           "layers for encoders without convolutions; 0 turns it off")
    width: int | None = Field(None, ge=1, le=1024, description="R's base width; default: half of D's where "
                              "the backbone has a width option (App. J: half as many filters)")
    cache: bool = Field(True, description="R-separate: keep the fitted R in RUN_DIR/reverser/")
    progress: bool = Field(True, description="R-separate: print fitting progress to stderr")


# ----------------------------------------------------------------------------- the network


def _add_dropout(net: nn.Module, p: float) -> nn.Module:
    """Dropout on the outputs of R's layers, through forward hooks (the backbone builds R)."""
    if p <= 0:
        return net
    convs = [m for m in net.modules()
             if isinstance(m, nn.Conv2d) or type(m).__name__.lower().endswith("conv2d")]
    if convs:
        for m in convs[1:]:
            m.register_forward_hook(lambda mod, inp, out: F.dropout2d(out, p, mod.training))
    else:
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        for m in linears[:-1]:
            m.register_forward_hook(lambda mod, inp, out: F.dropout(out, p, mod.training))
    return net


def make_reverser(backbone, params: ReverserParams) -> nn.Module:
    width = params.width
    if width is None:
        base = getattr(getattr(backbone, "params", None), "width", None)
        width = max(1, base // 2) if isinstance(base, int) else None
    kwargs = {"width": width} if width is not None else {}
    return _add_dropout(backbone.make_encoder(backbone.latent_dim, **kwargs), params.dropout)


# ----------------------------------------------------------------------------- R-separate


def fit_separate(R: nn.Module, G: nn.Module, backbone, *, steps: int, batch_size: int, lr: float,
                 optimizer: str = "rmsprop", progress: bool = False) -> list[float]:
    """Algorithm 1, lines 8-11: minimise MSE(R(G(z)), z) over R with G frozen. Returns the losses."""
    opt = (torch.optim.RMSprop(R.parameters(), lr=lr, alpha=0.9, eps=1e-6) if optimizer == "rmsprop"
           else torch.optim.Adam(R.parameters(), lr=lr, betas=(0.5, 0.999)))
    device = next(R.parameters()).device
    losses = []
    R.train()
    for step in range(1, steps + 1):
        z = backbone.sample_latent(batch_size, device=device)
        y = (torch.randint(backbone.num_classes, (batch_size,), device=device)
             if backbone.num_classes else None)
        with torch.no_grad():
            x = G(z, y)
        loss = similarity_loss(R(x), z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if progress and (step % max(1, steps // 10) == 0 or step == steps):
            print(f"reverser: fitting R {step}/{steps}  mse={loss.item():.4f}", file=sys.stderr)
    R.eval()
    return losses


class ReverserSeparate(LatentTransform):
    """z -> R(G(z)) at sampling; the pipeline then draws G(R(G(z)))."""

    phases = frozenset({"sample"})

    def __init__(self, *, params: ReverserParams, backbone) -> None:
        super().__init__()
        self.params = params
        self.R = make_reverser(backbone, params)
        self.register_buffer("fitted_step", torch.tensor(-1, dtype=torch.long))
        self._pipe: Any = None
        self.losses: list[float] = []

    # -- fitting and caching
    def _key(self, pipe) -> str:
        opts = self.params.model_dump(exclude={"cache", "progress"})
        blob = json.dumps({"opts": opts, "spec": pipe.spec.to_dict(), "step": pipe.step},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def _cache_path(self, pipe) -> Path | None:
        if not self.params.cache or pipe.run_dir is None:
            return None
        return Path(pipe.run_dir) / "reverser" / f"separate-step{pipe.step:08d}-{self._key(pipe)}.safetensors"

    def ensure_fitted(self, pipe) -> None:
        if int(self.fitted_step) == pipe.step:
            return
        path = self._cache_path(pipe)
        memo = _MEMO.setdefault(pipe, {})
        key = self._key(pipe)
        if key in memo:
            self.R.load_state_dict(memo[key])
        elif path is not None and path.exists():
            self.R.load_state_dict(load_file(str(path), device=str(pipe.device)))
        else:
            G = pipe.sampling_generator
            seed = pipe.spec.seed * 1_000_003 + pipe.step
            devices = [pipe.device] if pipe.device.type == "cuda" else []
            # own RNG stream: fitting neither depends on nor disturbs the sampling stream
            with torch.random.fork_rng(devices=devices), pipe.eval_mode():
                torch.manual_seed(seed)
                self.losses = fit_separate(
                    self.R, G, pipe.backbone, steps=self.params.steps,
                    batch_size=self.params.batch_size or pipe.spec.train.batch_size,
                    lr=self.params.lr, optimizer=self.params.optimizer,
                    progress=self.params.progress)
            if path is not None and is_main():  # under torchrun rank 0 owns the run's files
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                save_file({k: v.detach().clone().contiguous() for k, v in self.R.state_dict().items()},
                          str(tmp), metadata={"options": self.params.model_dump_json(),
                                              "step": str(pipe.step)})
                tmp.replace(path)
        memo[key] = {k: v.detach().clone() for k, v in self.R.state_dict().items()}
        self.R.eval()
        self.fitted_step.fill_(pipe.step)

    # -- component hooks
    def on_attach(self, pipeline) -> None:
        self._pipe = weakref.ref(pipeline)
        if self not in pipeline.components:  # added with sample(with_=...): fit (or load) now
            self.ensure_fitted(pipeline)

    def on_train_end(self, pipeline) -> None:
        self.ensure_fitted(pipeline)

    def forward(self, z: Tensor, ctx: StepContext) -> Tensor:
        pipe = self._pipe() if self._pipe is not None else None
        # outside training (a loaded run, a with_ component) R must match the current G; during a
        # training run a stack member keeps the R of the last train() end (or none yet)
        if pipe is not None and int(self.fitted_step) != pipe.step and (
                self not in pipe.components or not pipe.trainer_built):
            self.ensure_fitted(pipe)
        if int(self.fitted_step) < 0:
            return z  # a stack member sampled mid-training, before R exists: plain G samples
        self.R.eval()
        return self.R(ctx.G(z, ctx.y))


# ----------------------------------------------------------------------------- R-iterative


class ReverserIterative(LatentTransform):
    """z_0 -> z_t = R(G(z_(t-1))), t drawn per batch in training, t = N_R at sampling."""

    phases = frozenset({"d", "g", "sample"})

    def __init__(self, *, params: ReverserParams, backbone) -> None:
        super().__init__()
        self.params = params
        self.R = make_reverser(backbone, params)

    def g_parameters(self):
        return list(self.R.parameters())

    def iteration(self, phase: str, device: torch.device) -> int:
        if phase == "sample":
            return self.params.iterations
        return draw_trained_iteration(self.params.iterations, device=device)

    def chain(self, z: Tensor, G: nn.Module, y: Tensor | None, t: int) -> Tensor:
        """z_t; only the last R call keeps a graph (earlier images are detached, as in the paper)."""
        zt = z
        for s in range(1, t + 1):
            with torch.no_grad():
                x = G(zt.detach(), y)
            if s < t:
                with torch.no_grad():
                    zt = self.R(x)
            else:
                zt = self.R(x)
        return zt

    def forward(self, z: Tensor, ctx: StepContext) -> Tensor:
        t = self.iteration(ctx.phase, z.device)
        self.R.train(ctx.phase != "sample")
        zt = self.chain(z, ctx.G, ctx.y, t)
        if t == 0:
            return z
        w = self.params.similarity_weight ** (1 + t)
        ctx.cache[CACHE_KEY] = (z, zt, w)
        # G's loss reaches G in full and R scaled by (1 - lambda_R^(1+t)) (Algorithm 2, line 21)
        return scale_grad(zt, 1 - w) if ctx.phase == "g" else zt


class ReverserSimilarity(Regularizer):
    """lambda_R^(1+t) MSE(z_t, z_0) for the trained iteration, logged as ``reverser/similarity``."""

    def g_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        item = ctx.cache.get(CACHE_KEY)
        if item is None:
            return {}
        z0, zt, w = item
        if w == 0:
            return {}
        return {"similarity": w * similarity_loss(zt, z0)}


def check(params: ReverserParams, ctx) -> None:
    if (ctx.backbone.discriminator is None and "reverser" in ctx.methods
            and len(ctx.methods) == 1):
        raise ValueError("nothing in this stack trains G: backbone "
                         f"{ctx.spec.backbone.name!r} has no discriminator and R only learns to "
                         "invert a trained G; train G with a method that does (e.g. acl) and add "
                         "the reverser at sampling (--with reverser)")
    if params.mode == "iterative" and ctx.backbone.discriminator is None:
        raise ValueError("reverser mode 'iterative' trains R on D's rating of G(z_t) (Sec. 2.2), and "
                         f"backbone {ctx.spec.backbone.name!r} has no discriminator; use mode "
                         "'separate' or a backbone with one")


def build(params: ReverserParams, ctx) -> list:
    if params.mode == "separate":
        return [ReverserSeparate(params=params, backbone=ctx.backbone)]
    return [ReverserIterative(params=params, backbone=ctx.backbone), ReverserSimilarity()]
