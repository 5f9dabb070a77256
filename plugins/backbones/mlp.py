"""The fully connected nets of the AdvLatGAN paper's synthetic experiments (App. E.1, Tables 13-14).

G: z -> 100 -> 200 -> 100 -> 2 (ReLU between), D: x -> 100 -> 200 -> 100 -> 1. Widths and the
activation are options so that the same family serves any low-dimensional data.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
import torch
from torch import Tensor, nn

from gantk import Backbone, DataInfo, Discriminator

from .layers import Width, conditional_classes, require_labels


class MLPParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latent_dim: int = Field(2, ge=1, le=4096, description="size of z (the paper's synthetic runs use 2)")
    hidden: list[Width] = Field([100, 200, 100], min_length=1, max_length=32,
                              description="hidden widths (Tables 13-14)")
    prior: str = Field("normal", pattern="^(normal|uniform)$", description="latent prior")
    conditional: bool = Field(False, description="condition G and D on labels (embedding concat)")


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(self, *, latent_dim: int, hidden: list[int], out_dim: int,
                 num_classes: int | None) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        in_dim = latent_dim * (2 if num_classes else 1)
        self.body = _mlp([in_dim, *hidden])
        self.out = nn.Linear(hidden[-1], out_dim)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(require_labels(y, "generator"))], dim=1)
        return self.out(self.body(z))


class MLPDiscriminator(Discriminator):
    def __init__(self, *, in_dim: int, hidden: list[int], num_classes: int | None) -> None:
        super().__init__()
        self.body = _mlp([in_dim, *hidden])
        self.out = nn.Linear(hidden[-1], 1)
        self.feature_dim = hidden[-1]
        # projection discriminator (Miyato & Koyama 2018): logit += <embed(y), h>
        self.embed = nn.Embedding(num_classes, hidden[-1]) if num_classes else None

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.body(x.flatten(1))

    def head(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.out(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(require_labels(y, "discriminator")) * h).sum(1)
        return out


class MLPBackbone(Backbone):
    def __init__(self, *, params: MLPParams, data: DataInfo) -> None:
        super().__init__()
        out_dim = 1
        for s in data.shape:
            out_dim *= s
        self.latent_dim = params.latent_dim
        self.prior = params.prior
        self.image_shape = tuple(data.shape)
        self.num_classes = conditional_classes(params.conditional, data, "mlp")
        self.hidden = list(params.hidden)
        self.generator = _Reshape(MLPGenerator(latent_dim=params.latent_dim, hidden=self.hidden,
                                               out_dim=out_dim, num_classes=self.num_classes),
                                  self.image_shape)
        self.discriminator = MLPDiscriminator(in_dim=out_dim, hidden=self.hidden,
                                              num_classes=self.num_classes)
        self._in_dim = out_dim

    def make_encoder(self, out_dim: int, **kwargs) -> nn.Module:
        return nn.Sequential(nn.Flatten(), _mlp([self._in_dim, *self.hidden]),
                             nn.Linear(self.hidden[-1], out_dim))


class _Reshape(nn.Module):
    def __init__(self, net: nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.net = net
        self.shape = shape

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(z, y).view(z.shape[0], *self.shape)


def build(params: MLPParams, data: DataInfo) -> MLPBackbone:
    return MLPBackbone(params=params, data=data)
