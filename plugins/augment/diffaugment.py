"""DiffAugment (Zhao, Liu, Lin, Zhu, Han 2020, "Differentiable Augmentation for Data-Efficient GAN
Training", Sec. 3): the same random, differentiable transformations applied to real *and* fake
images every time D sees them, so D cannot tell the two apart by the augmentation and G's gradient
flows back through the transformation.

The three policies of the paper, on images in [-1, 1] (the paper's ranges):

* ``color``: brightness ``x + (u - 0.5)``, saturation ``(x - mean_c) * 2u + mean_c``, contrast
  ``(x - mean_chw) * (u + 0.5) + mean_chw``, one ``u ~ U(0, 1)`` per image and operation;
* ``translation``: shift by integers in ``[-r H, r H]`` x ``[-r W, r W]`` (``r`` = 1/8), zero fill;
* ``cutout``: a square of side ``r H`` (``r`` = 1/2) at a uniform centre set to zero.

``xflip`` is data augmentation, not DiffAugment: it mirrors each *real* image left-right with
probability 1/2 (StyleGAN2-ADA's ``--mirror``: the data set is used with its mirror images).
Every random draw uses the global torch RNG, which checkpoints save.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from gantk import BuildContext, DInputTransform, StepContext

Policy = Literal["color", "translation", "cutout"]


class DiffAugmentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: list[Policy] = Field(["color", "translation", "cutout"],
                                 description="augmentations applied in this order to reals and fakes "
                                             "before D (the paper's full policy by default)")
    translation_ratio: float = Field(0.125, ge=0, le=0.5, description="largest shift, as a fraction "
                                     "of the image side")
    cutout_ratio: float = Field(0.5, ge=0, le=1, description="cutout square side, as a fraction of "
                                "the image side")
    xflip: bool = Field(False, description="also mirror real images left-right with probability 1/2 "
                        "(data augmentation)")


def brightness(x: Tensor) -> Tensor:
    return x + (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)


def saturation(x: Tensor) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean


def contrast(x: Tensor) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def color(x: Tensor) -> Tensor:
    return contrast(saturation(brightness(x)))


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by its own integer offset (zero fill outside); differentiable in ``x``."""

    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) + dy  # source row of each output row
    cols = torch.arange(w, device=x.device).view(1, 1, w) + dx
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))  # index 0 and -1 are the zero border
    rows = (rows + 1).clamp(0, h + 1).expand(b, h, w)
    cols = (cols + 1).clamp(0, w + 1).expand(b, h, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1).expand(b, h, w)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero a square of side ``ratio * H`` (by ``ratio * W``) centred uniformly in each image."""

    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if ch == 0 or cw == 0:
        return x
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    dr, dc = rows - (cy - ch // 2), cols - (cx - cw // 2)  # position inside the square
    inside = (dr >= 0) & (dr < ch) & (dc >= 0) & (dc < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def xflip(x: Tensor) -> Tensor:
    flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return torch.where(flip, x.flip(3), x)


def diff_augment(x: Tensor, policy: list[str] | tuple[str, ...], *, translation_ratio: float = 0.125,
                 cutout_ratio: float = 0.5) -> Tensor:
    """Apply ``policy`` (names from ``color``, ``translation``, ``cutout``) in order."""

    for name in policy:
        if name == "color":
            x = color(x)
        elif name == "translation":
            x = translation(x, translation_ratio)
        elif name == "cutout":
            x = cutout(x, cutout_ratio)
        else:  # pragma: no cover - the Params model admits only the three names
            raise ValueError(name)
    return x


class DiffAugment(DInputTransform):
    """The stack's D-input transform: ``policy`` on reals and fakes, ``xflip`` on reals only."""

    def __init__(self, *, params: DiffAugmentParams) -> None:
        super().__init__()
        self.params = params

    def forward(self, x: Tensor, ctx: StepContext, *, real: bool) -> Tensor:
        p = self.params
        if real and p.xflip:
            x = xflip(x)
        return diff_augment(x, p.policy, translation_ratio=p.translation_ratio,
                            cutout_ratio=p.cutout_ratio)


def build(params: DiffAugmentParams, ctx: BuildContext) -> DiffAugment:
    return DiffAugment(params=params)
