"""G-LIS (Sec. 2.3): N_R residual "learned input space" modules before G, and their similarity
constraint.

``z'_i = z'_(i-1) + module_i(z'_(i-1))``, ``z'_0 = z`` (the vector that reaches ``lis``). Each module
is two fully connected layers of the latent's width; only the first is normalised and activated
(App. J: weight norm + TPReLU, or a plain linear layer + PReLU). During training the manipulation
stops before module ``i`` with probability ``0.5 ** (N_R - i)``, drawn once per batch and phase from
the global torch RNG; at sampling every module runs. The similarity term
``sum_i lambda_R ** (1 + i) * MSE(z'_i, z)`` over the modules that ran is added to G's loss.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from gantk import LatentTransform, Regularizer, StepContext
from gantk_plugins.backbones.layers import TPReLU

from .equations import draw_executed_modules, similarity_loss, similarity_weights

CACHE_KEY = "lis.chain"  # ctx.cache entry the transform leaves for the similarity regulariser


class LISParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_modules: int = Field(1, ge=0, le=16, description="N_R, the number of LIS modules (the paper "
                             "trains 0, 1 and 3)")
    similarity_weight: float = Field(0.9, ge=0, le=1, description="lambda_R: module i's constraint "
                                     "MSE(z'_i, z) is weighted lambda_R^(1+i); 0 switches it off")
    norm: Literal["weight", "none"] = Field("weight", description="first layer of each module: "
                                            "'weight' = weight norm + TPReLU (App. J), 'none' = "
                                            "plain linear + PReLU")
    early_stop: bool = Field(True, description="during training stop the manipulation before module "
                             "i with probability 0.5^(N_R - i), drawn per batch (Sec. 2.3)")
    init_scale: float = Field(0.01, ge=0, description="scale of the second layer's initial weights, "
                              "so that each module starts close to the identity map")


class UnitLinear(nn.Module):
    """Xiang & Li's non-affine weight-normalised linear layer: every row of W has unit L2 norm, no
    learned gain and no bias (the following TPReLU's threshold plays the bias)."""

    def __init__(self, *, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(features, features))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, F.normalize(self.weight, dim=1, eps=1e-8))


class LISModule(nn.Module):
    """``z -> z + fc2(act(norm(fc1(z))))``: one residual LIS module (Fig. 3b)."""

    def __init__(self, *, width: int, norm: str = "weight", init_scale: float = 0.01) -> None:
        super().__init__()
        if norm == "weight":
            self.fc1: nn.Module = UnitLinear(features=width)
            self.act: nn.Module = TPReLU(num_channels=width)
        else:
            self.fc1 = nn.Linear(width, width)
            self.act = nn.PReLU(width)
        self.fc2 = nn.Linear(width, width)
        with torch.no_grad():
            self.fc2.weight.mul_(init_scale)
            self.fc2.bias.zero_()

    def residual(self, z: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(z)))

    def forward(self, z: Tensor) -> Tensor:
        return z + self.residual(z)


class LISTransform(LatentTransform):
    """The modules as a latent transform, active in every phase; trained by G's optimiser."""

    phases = frozenset({"d", "g", "sample"})

    def __init__(self, *, params: LISParams, latent_dim: int) -> None:
        super().__init__()
        self.params = params
        self.lis = nn.ModuleList(LISModule(width=latent_dim, norm=params.norm,
                                           init_scale=params.init_scale)
                                 for _ in range(params.num_modules))
        #: at sampling run only this many modules (None: all); set through :func:`only_modules`
        self.sample_modules: int | None = None

    def g_parameters(self):
        return list(self.lis.parameters())

    def executed(self, phase: str, device: torch.device) -> int:
        """How many modules run: all at sampling, a per-batch draw in the training phases."""
        if phase == "sample":
            return len(self.lis) if self.sample_modules is None else min(self.sample_modules,
                                                                          len(self.lis))
        if not self.params.early_stop:
            return len(self.lis)
        return draw_executed_modules(len(self.lis), device=device)

    def chain(self, z: Tensor, k: int | None = None) -> list[Tensor]:
        """``[z, z'_1, ..., z'_k]`` (all modules when ``k`` is None)."""
        out = [z]
        for module in self.lis[: len(self.lis) if k is None else k]:
            out.append(module(out[-1]))
        return out

    def forward(self, z: Tensor, ctx: StepContext) -> Tensor:
        chain = self.chain(z, self.executed(ctx.phase, z.device))
        ctx.cache[CACHE_KEY] = chain
        return chain[-1]


class LISSimilarity(Regularizer):
    """Eq. 2 per module, weighted lambda_R^(1+i), logged as ``lis/similarity_<i+1>``."""

    def __init__(self, *, params: LISParams) -> None:
        super().__init__()
        self.params = params

    def terms(self, chain: list[Tensor]) -> dict[str, Tensor]:
        if self.params.similarity_weight == 0 or len(chain) < 2:
            return {}
        z = chain[0]
        weights = similarity_weights(self.params.similarity_weight, len(chain) - 1)
        return {f"similarity_{i + 1}": w * similarity_loss(zi, z)
                for i, (w, zi) in enumerate(zip(weights, chain[1:]))}

    def g_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        chain = ctx.cache.get(CACHE_KEY)
        return self.terms(chain) if chain is not None else {}


def check(params: LISParams, ctx) -> None:
    if "lis" not in ctx.methods:
        raise ValueError("'lis' modules are trained together with G, so they cannot be added to a "
                         "trained model at sampling time; put lis in the stack and train")


def build(params: LISParams, ctx) -> list:
    return [LISTransform(params=params, latent_dim=ctx.backbone.latent_dim),
            LISSimilarity(params=params)]


def find_lis(pipe) -> LISTransform:
    for comp in pipe.components:
        if isinstance(comp, LISTransform):
            return comp
    raise ValueError("this pipeline's stack has no 'lis' method")


@contextlib.contextmanager
def only_modules(pipe, k: int) -> Iterator[None]:
    """Sample (and evaluate) with the first ``k`` modules only: ``k = 0`` gives G(z), the paper's
    "G-LIS 0 of N" (Fig. 20)."""
    lis = find_lis(pipe)
    before, lis.sample_modules = lis.sample_modules, k
    try:
        yield
    finally:
        lis.sample_modules = before


@torch.no_grad()
def module_images(pipe, n: int = 8, *, z: Tensor | None = None, y: Tensor | None = None) -> Tensor:
    """Images of every module's output for ``n`` latents: shape (n, N_R + 1, C, H, W), column 0
    from the original z, column i from z'_i (the paper's per-module grids, Fig. 15-17). Uses the
    G that sampling uses (the EMA copy when there is one), in eval mode."""
    lis = find_lis(pipe)
    bb = pipe.backbone
    z = bb.sample_latent(n, device=pipe.device) if z is None else z.to(pipe.device)
    if bb.num_classes and y is None:
        y = torch.randint(bb.num_classes, (len(z),), device=pipe.device)
    G = pipe.sampling_generator
    with pipe.eval_mode():
        cols = [G(zi, y).cpu() for zi in lis.chain(z)]
    return torch.stack(cols, dim=1)
