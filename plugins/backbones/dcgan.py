"""DCGAN (Radford et al. 2016) and the nets of the AdvLatGAN paper: 32 px (Tables 15-16), 48 px
(Tables 19-20).

G, ``layout = "standard"`` (the default): z -> ConvTranspose to a 4x4 map (3x3 at 48 px) with
2^n w channels, then n stride-2 ConvTranspose layers with BatchNorm and ReLU (channels halving down
to 2w) up to R x R x C with Tanh: 16 px has two upsamplings, 32 px three, 48 and 64 px four (the
64 px net is Radford et al.'s 1024-512-256-128 with w = 64).
G, ``layout = "tables"``: the AdvLatGAN tables: z -> ConvTranspose to (R/16)^2 x 16w, then always
four upsamplings (2x2 start at 32 px, 3x3 at 48 px). Cut down to 16 px this starts from a 1x1 map,
which trains much worse than the standard net (docs/backbones.md); it stays for the paper runs.
D: four stride-2 convolutions (w, 2w, 4w, 8w channels) with LeakyReLU(0.2) followed by BatchNorm
from the second layer on (the tables put BN after the activation; skipped on a 1x1 map, i.e. the
last layer at 16 px, where it would erase every difference between the real and the fake batch),
flatten, linear to one logit.
D's features are the flattened last feature map (2048-d at 32 px, 4608-d at 48 px with w = 64).

Options beyond the tables:

* ``conditional``: conditional BatchNorm in G (per-class gain and bias) and a projection head in D
  (Miyato & Koyama 2018). Without batch norm in G the label embedding is concatenated to z instead.
* ``weight_norm``: the LIS paper's variant (App. J, after Xiang & Li 2017): weight normalisation on
  every layer and TPReLU activations instead of batch norm and (Leaky)ReLU.
* ``spectral_norm``: spectral normalisation on every layer of D.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
import torch
from torch import Tensor, nn

from gantk import Backbone, DataInfo, Discriminator

from .layers import (ConditionalBatchNorm2d, ProjectionHead, TPReLU, conditional_classes,
                     normalised, require_labels, square_resolution)


class DCGANParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latent_dim: int = Field(100, ge=1, le=4096, description="size of z")
    resolution: int | None = Field(None, ge=16, le=1024,
                                   description="image side; default: the data's (a multiple of 16)")
    width: int = Field(64, ge=1, le=256, description="base channel width w (G: 16w..2w, D: w..8w)")
    d_width: int | None = Field(None, ge=1, le=256,
                                description="D's base width if not w (a weaker D provokes mode "
                                            "collapse, as in the Stacked MNIST tests of Metz et al. "
                                            "2017 and PacGAN, which use w/4 and w/2)")
    prior: str = Field("normal", pattern="^(normal|uniform)$", description="latent prior")
    spectral_norm: bool = Field(False, description="spectral normalisation on D's layers")
    layout: str = Field("standard", pattern="^(standard|tables)$",
                        description="G's layout: standard (4x4 start, one upsampling per doubling: "
                                    "2 at 16 px, 3 at 32 px) or tables (AdvLatGAN Tables 15-16/19-20: "
                                    "(R/16)^2 start and four upsamplings)")
    init: str = Field("dcgan", pattern="^(dcgan|pytorch)$",
                      description="weight init: dcgan (N(0, 0.02) weights, BN gains N(1, 0.02), zero "
                                  "biases, as Radford et al.) or pytorch (the layers' own defaults)")
    batch_norm: bool = Field(True, description="BatchNorm in G and D as in Tables 15-16")
    weight_norm: bool = Field(False, description="weight normalisation with TPReLU activations on "
                                                 "every layer of G and D, as in the LIS paper's nets "
                                                 "(needs batch_norm = false)")
    conditional: bool = Field(False, description="class-conditional: conditional BatchNorm in G and "
                                                 "a projection discriminator (needs labelled data)")

    @model_validator(mode="after")
    def _check(self) -> DCGANParams:
        if self.resolution is not None and (self.resolution % 16 or self.resolution <= 0):
            raise ValueError(f"resolution must be a multiple of 16 (16, 32, 48, 64), got {self.resolution}")
        if self.weight_norm and self.batch_norm:
            raise ValueError("weight_norm replaces batch norm (as in the LIS nets); "
                             "set batch_norm = false together with weight_norm = true")
        if self.weight_norm and self.spectral_norm:
            raise ValueError("weight_norm and spectral_norm cannot both normalise D; set one of them")
        return self


def generator_upsamplings(resolution: int, layout: str) -> int:
    """How many stride-2 layers G has: four in the tables' layout; in the standard layout as many
    as take a 3-5 px start map to ``resolution`` (16 px: 2, 32 px: 3, 48 and 64 px: 4)."""

    if layout == "tables":
        return 4
    n = 0
    while resolution % 2 ** (n + 1) == 0 and resolution // 2 ** (n + 1) >= 3:
        n += 1
    return n


@torch.no_grad()
def dcgan_init(net: nn.Module) -> None:
    """Radford et al.'s init: conv/linear weights N(0, 0.02), BN gains N(1, 0.02), biases 0.
    Layers under weight or spectral normalisation keep their own init (their scale is normalised
    away and weight norm's gain is computed from the initial weight)."""

    for m in net.modules():
        if getattr(m, "parametrizations", None) is not None:
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    def __init__(self, *, latent_dim: int, channels: int, resolution: int, width: int,
                 batch_norm: bool, weight_norm: bool = False, num_classes: int | None = None,
                 layout: str = "standard") -> None:
        super().__init__()
        n_up = generator_upsamplings(resolution, layout)
        start = resolution // 2 ** n_up
        chans = [2 ** (n_up - i) * width for i in range(n_up)]  # 2^n w ... 2w
        self.num_classes = num_classes
        # conditional BN carries the label; a G without BN gets it concatenated to z (Mirza & Osindero)
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes and not batch_norm else None
        in_dim = latent_dim * (2 if self.embed is not None else 1)
        self.input = normalised(nn.ConvTranspose2d(in_dim, chans[0], start, 1, 0), weight=weight_norm)
        self.norms = nn.ModuleList(self._norm(c, batch_norm, num_classes) for c in chans)
        self.acts = nn.ModuleList(TPReLU(num_channels=c) if weight_norm else nn.ReLU() for c in chans)
        self.convs = nn.ModuleList(
            normalised(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), weight=weight_norm)
            for c_in, c_out in zip(chans, [*chans[1:], channels]))

    @staticmethod
    def _norm(c: int, batch_norm: bool, num_classes: int | None) -> nn.Module:
        if not batch_norm:
            return nn.Identity()
        if num_classes:
            return ConditionalBatchNorm2d(num_features=c, num_classes=num_classes)
        return nn.BatchNorm2d(c)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.num_classes:
            y = require_labels(y, "generator")
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        x = self.input(z.view(z.shape[0], -1, 1, 1))
        for norm, act, conv in zip(self.norms, self.acts, self.convs):
            x = norm(x, y) if isinstance(norm, ConditionalBatchNorm2d) else norm(x)
            x = conv(act(x))
        return torch.tanh(x)


class DCGANDiscriminator(Discriminator):
    def __init__(self, *, channels: int, resolution: int, width: int, batch_norm: bool,
                 spectral_norm: bool, weight_norm: bool = False, num_classes: int | None = None,
                 out_dim: int = 1) -> None:
        super().__init__()
        chans = [channels, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(chans, chans[1:])):
            conv = normalised(nn.Conv2d(c_in, c_out, 4, 2, 1), spectral=spectral_norm, weight=weight_norm)
            layers += [conv, TPReLU(num_channels=c_out) if weight_norm else nn.LeakyReLU(0.2)]
            side = resolution // 2 ** (i + 1)
            # BatchNorm on a 1x1 map (the last layer at 16 px) standardises every feature over
            # the batch; D scores real and fake batches separately, so both would get the same
            # mean logit and D could not learn. Tables 15-16 (32 px) end on 2x2 maps.
            if i > 0 and batch_norm and side > 1:
                layers.append(nn.BatchNorm2d(c_out))
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = 8 * width * (resolution // 16) ** 2
        self.projection = ProjectionHead(feature_dim=self.feature_dim, num_classes=num_classes,
                                         out_dim=out_dim, spectral_norm=spectral_norm)

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.body(x)

    def head(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        return self.projection(h, y)


class DCGANBackbone(Backbone):
    def __init__(self, *, params: DCGANParams, data: DataInfo) -> None:
        super().__init__()
        channels = data.shape[0]
        self.resolution = square_resolution("dcgan", params.resolution, data, multiple=16)
        self.params = params
        self.latent_dim = params.latent_dim
        self.prior = params.prior
        self.image_shape = tuple(data.shape)
        self.num_classes = conditional_classes(params.conditional, data, "dcgan")
        self.generator = DCGANGenerator(latent_dim=params.latent_dim, channels=channels,
                                        resolution=self.resolution, width=params.width,
                                        batch_norm=params.batch_norm, weight_norm=params.weight_norm,
                                        num_classes=self.num_classes, layout=params.layout)
        self.discriminator = DCGANDiscriminator(channels=channels, resolution=self.resolution,
                                                width=params.d_width or params.width,
                                                batch_norm=params.batch_norm,
                                                spectral_norm=params.spectral_norm,
                                                weight_norm=params.weight_norm,
                                                num_classes=self.num_classes)
        if params.init == "dcgan":
            dcgan_init(self.generator)
            dcgan_init(self.discriminator)

    def make_encoder(self, out_dim: int, *, width: int | None = None, **kwargs) -> nn.Module:
        """D's architecture with an ``out_dim``-wide linear output and no spectral norm (an encoder
        is not a critic). ``width`` overrides D's base width (the LIS reverser uses half)."""

        net = DCGANDiscriminator(channels=self.image_shape[0], resolution=self.resolution,
                                 width=width or self.params.width, batch_norm=self.params.batch_norm,
                                 spectral_norm=False, weight_norm=self.params.weight_norm,
                                 out_dim=out_dim)
        if self.params.init == "dcgan":
            dcgan_init(net)
        return _Encoder(net)


class _Encoder(nn.Module):
    def __init__(self, net: DCGANDiscriminator) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net.projection.out(self.net.features(x))


def build(params: DCGANParams, data: DataInfo) -> DCGANBackbone:
    return DCGANBackbone(params=params, data=data)
