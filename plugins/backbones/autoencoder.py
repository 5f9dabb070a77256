"""A deterministic autoencoder (encoder Enc_x, decoder Dec_x) with no image discriminator.

It is the backbone of ACL-AE (the ACL paper, Sec. 4.1, Eq. 2-3): the decoder is the generator
(``G(c) = Dec_x(c)``, codes c of size ``latent_dim``), the encoder maps images to the code space
whose distribution ACL's code generator learns to match. The backbone owns the reconstruction
objective L_E = ||Dec_x(Enc_x(x)) - x|| (:meth:`AutoencoderBackbone.reconstruction_loss`) but
does not add it to a step by itself: a method that trains the autoencoder (``acl``, or the
``aae`` baseline) adds it to the G-phase terms, which is why ``g_parameters`` covers the encoder as well as the decoder. Without
such a method nothing trains, and the stack must be refused.

With ``kl_weight`` (beta) > 0 it is a (beta-)VAE (Kingma & Welling 2014; Higgins et al. 2017), the
baseline the ACL paper compares ACL-AE with (Fig. 6): Enc_x outputs a mean and a log-variance,
L_E decodes a reparameterised sample (the mean in eval mode) and adds beta * KL(q(c|x) || N(0, I))
divided by the number of elements of one image, so that with the per-element mean distance the
objective is the sum-form ELBO ||x - x_hat||^2 + beta * KL scaled by a constant; beta = 1 is a
Gaussian decoder of variance 1/2 on [-1, 1] pixels (a Laplace decoder of scale 1 with ``l1``).
Sampling a VAE decodes the prior draw: ``acl``'s ``sample_codes = "prior"``.

Images: Enc_x is three stride-2 4x4 convolutions (w, 2w, 4w, LeakyReLU 0.2, BatchNorm after the
first) and a linear layer to the code; Dec_x mirrors it with transposed convolutions, BatchNorm,
ReLU and Tanh. Any multiple of 8 px works. Points: fully connected nets with ``hidden`` widths.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence

from gantk import Backbone, DataInfo

from .layers import Width


class AutoencoderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latent_dim: int = Field(10, ge=1, le=4096, description="code size (10 in the ACL paper's MNIST comparison)")
    width: int = Field(32, ge=1, le=512, description="base channel width w of the conv nets (w, 2w, 4w)")
    hidden: list[Width] = Field([128, 128], min_length=1, max_length=32, description="hidden widths for points data")
    prior: str = Field("normal", pattern="^(normal|uniform)$", description="prior of the codes fed "
                       "to the decoder at sampling time (ACL maps it onto the encoder's code space)")
    reconstruction: Literal["l2", "l1"] = Field("l2", description="distance of the reconstruction "
                                                "objective L_E (mean squared or mean absolute error)")
    kl_weight: float = Field(0.0, ge=0, le=1e6, description="beta of a (beta-)VAE: > 0 makes Enc_x "
                             "output a mean and a log-variance and adds beta * KL(q(c|x) || N(0, I)) "
                             "per image element to L_E (1: the ELBO of a Gaussian decoder of "
                             "variance 1/2 with l2); 0: the deterministic autoencoder")

    @model_validator(mode="after")
    def _vae_prior(self) -> "AutoencoderParams":
        if self.kl_weight > 0 and self.prior != "normal":
            raise ValueError(f"kl_weight = {self.kl_weight} makes a VAE, whose KL term pulls the "
                             f"codes towards N(0, I), but prior = {self.prior!r}; set prior = "
                             "\"normal\" or kl_weight = 0")
        return self


def _conv_encoder(channels: int, resolution: int, width: int, out_dim: int) -> nn.Sequential:
    chans = [channels, width, 2 * width, 4 * width]
    layers: list[nn.Module] = []
    for i, (c_in, c_out) in enumerate(zip(chans, chans[1:])):
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2)]
        if i > 0:
            layers.append(nn.BatchNorm2d(c_out))
    side = resolution // 8
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(4 * width * side * side, out_dim))


class ConvDecoder(nn.Module):
    def __init__(self, *, latent_dim: int, channels: int, resolution: int, width: int) -> None:
        super().__init__()
        self.side = resolution // 8
        self.linear = nn.Linear(latent_dim, 4 * width * self.side**2)
        chans = [4 * width, 2 * width, width]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans, [*chans[1:], channels]):
            layers += [nn.BatchNorm2d(c_in), nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)]
        self.body = nn.Sequential(*layers, nn.Tanh())

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.body(self.linear(z).view(z.shape[0], -1, self.side, self.side))


def _mlp(sizes: list[int], *, final_activation: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or final_activation:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPDecoder(nn.Module):
    def __init__(self, *, latent_dim: int, hidden: list[int], shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape
        out = 1
        for s in shape:
            out *= s
        self.net = _mlp([latent_dim, *hidden, out])

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(z).view(z.shape[0], *self.shape)


class AutoencoderBackbone(Backbone):
    def __init__(self, *, params: AutoencoderParams, data: DataInfo) -> None:
        super().__init__()
        self.params = params
        self.latent_dim, self.prior = params.latent_dim, params.prior
        self.image_shape = tuple(data.shape)
        self.num_classes = None
        self.discriminator = None
        self.kind = data.kind
        if data.kind == "image":
            channels, height, width = data.shape
            if height != width or height % 8:
                raise ValueError(f"autoencoder needs square images whose side is a multiple of 8, "
                                 f"the data is {height}x{width}; set data.resolution = 16 or 32")
            self.resolution = height
            self.generator = ConvDecoder(latent_dim=params.latent_dim, channels=channels,
                                         resolution=height, width=params.width)
        else:
            self.generator = MLPDecoder(latent_dim=params.latent_dim, hidden=list(params.hidden),
                                        shape=self.image_shape)
        self.variational = params.kl_weight > 0
        # a VAE's Enc_x outputs the mean and the log-variance of q(c|x), side by side
        self.encoder = self.make_encoder(params.latent_dim * (2 if self.variational else 1))

    @property
    def decoder(self) -> nn.Module:
        return self.generator

    @property
    def provides(self) -> frozenset[str]:
        # "autoencoder": the backbone has Enc_x (``encoder``) and ``reconstruction_loss``
        return super().provides | {"autoencoder"}

    def make_encoder(self, out_dim: int, **kwargs) -> nn.Module:
        if self.kind == "image":
            c, side, _ = self.image_shape
            return _conv_encoder(c, side, kwargs.get("width") or self.params.width, out_dim)
        in_dim = 1
        for s in self.image_shape:
            in_dim *= s
        return nn.Sequential(nn.Flatten(), _mlp([in_dim, *self.params.hidden, out_dim]))

    def posterior(self, x: Tensor) -> Normal:
        """q(c|x) of a VAE (``kl_weight`` > 0): a diagonal Gaussian from Enc_x's two halves."""

        if not self.variational:
            raise ValueError("posterior() needs a VAE: set backbone.kl_weight > 0")
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return Normal(mean, (0.5 * log_var).exp())

    def encode(self, x: Tensor) -> Tensor:
        """The code of x: Enc_x(x), or the posterior mean for a VAE."""

        return self.posterior(x).mean if self.variational else self.encoder(x)

    def reconstruction_loss(self, x: Tensor) -> Tensor:
        """L_E of ACL-AE (Eq. 2): distance between x and Dec_x(Enc_x(x)), averaged; for a VAE the
        code is a reparameterised sample of q(c|x) in training mode (its mean in eval mode), and
        beta * KL(q(c|x) || N(0, I)) / (elements per image) is added."""

        if self.variational:
            q = self.posterior(x)
            code = q.rsample() if self.training else q.mean
        else:
            code = self.encoder(x)
        rec = self.generator(code)
        if self.params.reconstruction == "l1":
            loss = F.l1_loss(rec, x)
        else:
            loss = F.mse_loss(rec, x)
        if self.variational:
            prior = Normal(torch.zeros_like(q.mean), torch.ones_like(q.mean))
            kl = kl_divergence(q, prior).sum(dim=1).mean()
            loss = loss + self.params.kl_weight * kl / x[0].numel()
        return loss

    def g_parameters(self):
        # L_E trains encoder and decoder together, so both sit in G's optimiser
        return [*self.generator.parameters(), *self.encoder.parameters()]


def build(params: AutoencoderParams, data: DataInfo) -> AutoencoderBackbone:
    return AutoencoderBackbone(params=params, data=data)
