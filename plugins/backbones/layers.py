"""Building blocks shared by the DCGAN, SNGAN-ResNet and MLP backbones.

* :class:`ConditionalBatchNorm2d`: BatchNorm whose gain and bias are looked up per class (de Vries
  et al. 2017, as used by Miyato & Koyama 2018 for the class-conditional generator).
* :class:`ProjectionHead`: the projection discriminator's output layer,
  ``logit = psi(h) + <embed(y), h>`` (Miyato & Koyama 2018, Eq. 3).
* :class:`TPReLU`: the translated PReLU of Xiang & Li (2017), used with weight normalisation in the
  LIS paper's nets (App. J): a PReLU whose kink sits at a learned threshold.
* :func:`normalised`: wrap a layer in spectral or weight normalisation.
* :func:`require_labels` / :func:`conditional_classes`: one wording for the label errors.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from gantk import DataInfo

#: a hidden-layer width in a spec: positive and small enough to allocate
Width = Annotated[int, Field(ge=1, le=16_384)]


def conditional_classes(conditional: bool, data: DataInfo, backbone: str) -> int | None:
    """The number of classes a conditional net is built for, or None for an unconditional one."""

    if not conditional:
        return None
    if not data.labelled:
        raise ValueError(f"{backbone}: conditional = true needs a labelled data set, and this one has "
                         "no labels; set backbone.conditional = false or choose labelled data "
                         "(e.g. data.name = \"digits\")")
    return data.num_classes


def square_resolution(backbone: str, requested: int | None, data: DataInfo, *,
                      multiple: int) -> int:
    """The side of the square images a convolutional backbone builds, checked against the data."""
    if data.kind != "image" or len(data.shape) != 3:
        raise ValueError(f"{backbone} needs image data (C, H, W); use backbone=mlp for points")
    _, height, width = data.shape
    resolution = requested or height
    if resolution != height or height != width:
        raise ValueError(f"{backbone} builds square {resolution} px images but the data is "
                         f"{height}x{width}; set data.resolution = {resolution}")
    if resolution % multiple:
        raise ValueError(f"{backbone} needs a resolution that is a multiple of {multiple}, the data "
                         f"is {height} px; set data.resolution = 16, 32 or 48")
    return resolution


def require_labels(y: Tensor | None, who: str) -> Tensor:
    if y is None:
        raise ValueError(f"this {who} is class-conditional: pass labels y (a LongTensor of shape (B,))")
    return y


def normalised(module: nn.Module, *, spectral: bool = False, weight: bool = False) -> nn.Module:
    """``module`` with spectral normalisation (Miyato et al. 2018) or weight normalisation
    (Salimans & Kingma 2016) on its ``weight``. The parametrisation API is used (not the older
    hook API) because its modules survive ``copy.deepcopy`` after a forward pass, which EMA copies
    and encoders built from D's family need."""

    if spectral and weight:
        raise ValueError("spectral and weight normalisation cannot both wrap one layer; "
                         "set only one of spectral_norm / weight_norm")
    if spectral:
        return parametrizations.spectral_norm(module)
    if weight:
        return parametrizations.weight_norm(module)
    return module


class ConditionalBatchNorm2d(nn.Module):
    """``BN(x) * gamma_y + beta_y``: batch statistics shared by all classes, affine per class."""

    def __init__(self, *, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        # start as the identity affine map so that every class begins as the unconditional BN
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        out = self.bn(x)
        return out * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]


class ProjectionHead(nn.Module):
    """D's output layer: ``psi(h) + <embed(y), h>`` when conditional, ``psi(h)`` otherwise.

    ``out`` is the linear ``psi`` (out_dim wide, 1 for a discriminator); ``embed`` the class
    embedding V of the projection discriminator."""

    def __init__(self, *, feature_dim: int, num_classes: int | None, out_dim: int = 1,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        self.out = normalised(nn.Linear(feature_dim, out_dim), spectral=spectral_norm)
        self.embed = None
        if num_classes:
            embed = nn.Embedding(num_classes, feature_dim)
            nn.init.xavier_uniform_(embed.weight)  # N(0, 1) rows would swamp psi(h) at the start
            self.embed = normalised(embed, spectral=spectral_norm)

    def forward(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.out(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(require_labels(y, "discriminator")) * h).sum(1)
        return out


class TPReLU(nn.Module):
    """``t + PReLU(x - t)`` with a learned threshold ``t`` and slope per channel (Xiang & Li 2017).

    Weight-normalised layers have no learned scale on their inputs' statistics (no batch norm), so
    the learned threshold lets each unit choose where its kink sits."""

    def __init__(self, *, num_channels: int) -> None:
        super().__init__()
        self.prelu = nn.PReLU(num_channels)
        self.threshold = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        t = self.threshold.view(1, -1, *([1] * (x.dim() - 2)))
        return self.prelu(x - t) + t
