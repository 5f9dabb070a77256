"""The SNGAN ResNet generator and discriminator (Miyato et al. 2018, App. B, Tables 4-5).

Two layouts, chosen by resolution (``layout = "auto"``) or by name:

* ``cifar`` (32 px): G: z -> linear 4x4 x ch -> 3 up-blocks (ch) -> BN, ReLU, conv3x3 -> tanh with
  ch = 256; D: an optimised down-block, a down-block, two plain blocks (ch = 128), ReLU, global sum
  pooling, linear.
* ``stl`` (48 px): G: z -> linear 6x6 x 512 -> up-blocks 256, 128, 64 -> BN, ReLU, conv3x3 -> tanh;
  D: down-blocks 64, 128, 256, 512 and a plain block 1024, ReLU, global sum pooling, linear.

G always has three up-blocks from an (R/8)^2 start, so any multiple of 8 works (8 and 16 px for tests
and CPU runs). Blocks upsample by nearest-neighbour unpooling and D downsamples by 2x2 average
pooling, as in the authors' code. D's features are the pooled vector (``feature_dim`` = D's last
width). Class-conditional nets use conditional BN in G's blocks and a projection head in D (Miyato &
Koyama 2018), which is how the SNGAN authors built their conditional ImageNet model.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantk import Backbone, DataInfo, Discriminator

from .layers import (ConditionalBatchNorm2d, ProjectionHead, conditional_classes, normalised,
                     require_labels, square_resolution)


class ResNetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latent_dim: int = Field(128, ge=1, le=4096, description="size of z (128 in the SNGAN paper)")
    resolution: int | None = Field(None, ge=8, le=1024,
                                   description="image side; default: the data's (a multiple of 8)")
    layout: Literal["auto", "cifar", "stl"] = Field(
        "auto", description="'cifar' (Table 4) or 'stl' (Table 5); 'auto': cifar up to 32 px, stl above")
    g_channels: int | None = Field(None, ge=8, le=2048, description="G's first width ch (cifar: 256 in every "
                                   "block; stl: 512, halved per block); default: the paper's")
    d_channels: int | None = Field(None, ge=1, le=2048, description="D's first width (cifar: 128 in every "
                                   "block; stl: 64, doubled per block); default: the paper's")
    prior: str = Field("normal", pattern="^(normal|uniform)$", description="latent prior")
    spectral_norm: bool = Field(True, description="spectral normalisation on every layer of D")
    batch_norm: bool = Field(True, description="BatchNorm in G's blocks (conditional BN when conditional)")
    conditional: bool = Field(False, description="class-conditional: conditional BN in G, projection D")


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class GBlock(nn.Module):
    """BN-ReLU-up-conv3x3-BN-ReLU-conv3x3, shortcut up-conv1x1."""

    def __init__(self, *, c_in: int, c_out: int, batch_norm: bool, num_classes: int | None) -> None:
        super().__init__()
        self.norm1 = _g_norm(c_in, batch_norm, num_classes)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.norm2 = _g_norm(c_out, batch_norm, num_classes)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)
        # the authors' init: Xavier with gain sqrt(2) on residual convs (ReLU), 1 on the shortcut
        for conv in (self.conv1, self.conv2):
            nn.init.xavier_uniform_(conv.weight, math.sqrt(2))
        nn.init.xavier_uniform_(self.shortcut.weight)

    def forward(self, x: Tensor, y: Tensor | None) -> Tensor:
        h = self.conv1(_up(F.relu(_apply(self.norm1, x, y))))
        h = self.conv2(F.relu(_apply(self.norm2, h, y)))
        return h + self.shortcut(_up(x))


def _g_norm(c: int, batch_norm: bool, num_classes: int | None) -> nn.Module:
    if not batch_norm:
        return nn.Identity()
    return ConditionalBatchNorm2d(num_features=c, num_classes=num_classes) if num_classes else nn.BatchNorm2d(c)


def _apply(norm: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
    return norm(x, y) if isinstance(norm, ConditionalBatchNorm2d) else norm(x)


class DBlock(nn.Module):
    """ReLU-conv3x3-ReLU-conv3x3(-avgpool); the shortcut is conv1x1(-avgpool) when the shape changes.

    The ``first`` block (the paper's "optimized" block) sees the image: no leading ReLU, and its
    shortcut pools before the 1x1 conv."""

    def __init__(self, *, c_in: int, c_out: int, down: bool, first: bool, sn: bool) -> None:
        super().__init__()
        self.down, self.first = down, first
        conv1, conv2 = nn.Conv2d(c_in, c_out, 3, 1, 1), nn.Conv2d(c_out, c_out, 3, 1, 1)
        nn.init.xavier_uniform_(conv1.weight, math.sqrt(2))
        nn.init.xavier_uniform_(conv2.weight, math.sqrt(2))
        self.conv1, self.conv2 = normalised(conv1, spectral=sn), normalised(conv2, spectral=sn)
        self.shortcut = None
        if down or c_in != c_out or first:
            sc = nn.Conv2d(c_in, c_out, 1)
            nn.init.xavier_uniform_(sc.weight)
            self.shortcut = normalised(sc, spectral=sn)

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is None:
            return h + x
        if self.first:
            s = self.shortcut(F.avg_pool2d(x, 2) if self.down else x)
        else:
            s = self.shortcut(x)
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


def _layout(layout: str, resolution: int) -> str:
    return ("cifar" if resolution <= 32 else "stl") if layout == "auto" else layout


class ResNetGenerator(nn.Module):
    def __init__(self, *, latent_dim: int, channels: int, resolution: int, layout: str, ch: int,
                 batch_norm: bool, num_classes: int | None) -> None:
        super().__init__()
        self.start, self.num_classes = resolution // 8, num_classes
        widths = [ch] * 4 if layout == "cifar" else [ch, ch // 2, ch // 4, ch // 8]
        self.linear = nn.Linear(latent_dim, widths[0] * self.start**2)
        nn.init.xavier_uniform_(self.linear.weight)
        self.blocks = nn.ModuleList(GBlock(c_in=a, c_out=b, batch_norm=batch_norm, num_classes=num_classes)
                                    for a, b in zip(widths, widths[1:]))
        self.out_norm = nn.BatchNorm2d(widths[-1]) if batch_norm else nn.Identity()
        self.out_conv = nn.Conv2d(widths[-1], channels, 3, 1, 1)
        nn.init.xavier_uniform_(self.out_conv.weight)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.num_classes:
            y = require_labels(y, "generator")
        x = self.linear(z).view(z.shape[0], -1, self.start, self.start)
        for block in self.blocks:
            x = block(x, y)
        return torch.tanh(self.out_conv(F.relu(self.out_norm(x))))


class ResNetDiscriminator(Discriminator):
    def __init__(self, *, channels: int, resolution: int, layout: str, ch: int, spectral_norm: bool,
                 num_classes: int | None = None, out_dim: int = 1) -> None:
        super().__init__()
        if layout == "cifar":
            plan = [(channels, ch, True), (ch, ch, True), (ch, ch, False), (ch, ch, False)]
        else:
            plan = [(channels, ch, True), (ch, 2 * ch, True), (2 * ch, 4 * ch, True),
                    (4 * ch, 8 * ch, True), (8 * ch, 16 * ch, False)]
        self.blocks = nn.Sequential(*(DBlock(c_in=a, c_out=b, down=d, first=i == 0, sn=spectral_norm)
                                      for i, (a, b, d) in enumerate(plan)))
        self.feature_dim = plan[-1][1]
        self.projection = ProjectionHead(feature_dim=self.feature_dim, num_classes=num_classes,
                                         out_dim=out_dim, spectral_norm=spectral_norm)

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        # global *sum* pooling, as in the paper (not mean): the head sees the same scale as SNGAN's
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def head(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        return self.projection(h, y)


class ResNetBackbone(Backbone):
    def __init__(self, *, params: ResNetParams, data: DataInfo) -> None:
        super().__init__()
        channels = data.shape[0]
        self.resolution = square_resolution("resnet", params.resolution, data, multiple=8)
        self.layout = _layout(params.layout, self.resolution)
        if self.layout == "stl" and self.resolution % 16:
            raise ValueError(f"the stl layout halves the image four times and needs a multiple of "
                             f"16, got {self.resolution} px; set backbone.layout = \"cifar\"")
        self.g_channels = params.g_channels or (256 if self.layout == "cifar" else 512)
        self.d_channels = params.d_channels or (128 if self.layout == "cifar" else 64)
        if self.layout == "stl" and self.g_channels % 8:
            raise ValueError(f"the stl layout halves G's width three times; set g_channels to a "
                             f"multiple of 8 (got {self.g_channels})")
        self.params = params
        self.latent_dim, self.prior = params.latent_dim, params.prior
        self.image_shape = tuple(data.shape)
        self.num_classes = conditional_classes(params.conditional, data, "resnet")
        self.generator = ResNetGenerator(latent_dim=params.latent_dim, channels=channels,
                                         resolution=self.resolution, layout=self.layout,
                                         ch=self.g_channels, batch_norm=params.batch_norm,
                                         num_classes=self.num_classes)
        self.discriminator = ResNetDiscriminator(channels=channels, resolution=self.resolution,
                                                 layout=self.layout, ch=self.d_channels,
                                                 spectral_norm=params.spectral_norm,
                                                 num_classes=self.num_classes)

    def make_encoder(self, out_dim: int, *, width: int | None = None, **kwargs) -> nn.Module:
        """D's architecture (no spectral norm) with an ``out_dim``-wide linear output; ``width``
        overrides D's first width."""

        net = ResNetDiscriminator(channels=self.image_shape[0], resolution=self.resolution,
                                  layout=self.layout, ch=width or self.d_channels,
                                  spectral_norm=False, out_dim=out_dim)
        return _Encoder(net)


class _Encoder(nn.Module):
    def __init__(self, net: ResNetDiscriminator) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        # mean (not sum) pooling: an encoder's output scale should not grow with the image area
        h = F.relu(self.net.blocks(x)).mean(dim=(2, 3))
        return self.net.projection.out(h)


def build(params: ResNetParams, data: DataInfo) -> ResNetBackbone:
    return ResNetBackbone(params=params, data=data)
