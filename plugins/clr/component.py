"""The ``clr`` regulariser: a latent head phi on D, the latent-consistency term on D's side and the
real-image reconstruction term on G's side (CLR-GAN, Sec. 3, Algorithm 1, Eq. 13-14).

Gradient flow (what the tests check):

* D phase: ``lambda_1 * Dist(phi(f(G(z'))), z')``. ``ctx.fake`` is already detached and the target
  ``z'`` (``ctx.z_in``, what G received) is a constant, so the term trains D's feature extractor f
  and the head phi (returned by ``d_parameters()``, hence stepped by D's optimiser), never G.
* G phase: ``lambda_2 * Dist(x, G(phi(f(x))))``. ``phi(f(x))`` is computed and detached (the trainer
  also freezes D in this phase), so the term trains G only. Conditional backbones reconstruct with
  the real labels ``ctx.real_y``. On a generator with style mixing (StyleGAN2) mixing is switched
  off for this pass, and G's buffers (BatchNorm running statistics, StyleGAN2's running mean of w)
  are restored after it, so that sampling statistics keep following the prior's latents.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from gantk import BuildContext, Regularizer, StepContext

from .objectives import latent_consistency_loss, reconstruction_loss


class CLRParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lambda_latent: float = Field(5.0, ge=0, description="lambda_1 (Eq. 13): weight of the latent "
                                 "consistency loss Dist(phi(G(z)), z) added to D's loss")
    lambda_reconstruction: float = Field(0.5, ge=0, description="lambda_2 (Eq. 14): weight of the "
                                         "real-image reconstruction loss Dist(x, G(phi(x))) added to "
                                         "G's loss")
    distance: Literal["l1", "mse"] = Field("l1", description="Dist of Eq. 5 and 7: 'l1' as in the "
                                           "paper's Eq. 6 and 8, 'mse' as in the authors' released code")
    reduction: Literal["mean", "sum"] = Field("mean", description="'mean' over every element (torch's "
                                              "L1Loss / the authors' mse_loss); 'sum' over each "
                                              "sample's dimensions, mean over the batch (Eq. 6/8 "
                                              "as printed)")
    head: Literal["affine", "last_feature_layer"] = Field(
        "affine", description="phi (sigma in Eq. 4): 'affine' = a linear map from D's features to the "
        "latent size; 'last_feature_layer' = D's last feature layer itself (its width must equal the "
        "latent size), as the authors' StyleGAN2 code does")


def check(params: CLRParams, ctx: BuildContext) -> None:
    """Refuse a head that cannot work on this backbone, with the reason."""

    if params.head == "last_feature_layer":
        width, latent = ctx.backbone.feature_dim, ctx.backbone.latent_dim
        if width != latent:
            raise ValueError(
                f"head = 'last_feature_layer' uses D's last feature layer as phi, so its width must "
                f"equal the latent size, but this backbone's D features are {width}-wide and z is "
                f"{latent}-dimensional; use head = 'affine' (the paper's Eq. 4), or make them equal "
                f"(e.g. on stylegan2 the 4x4 channel count min(channel_base / 4, channel_max) "
                f"= latent_dim)")


@contextlib.contextmanager
def reconstruction_pass(G: nn.Module) -> Iterator[None]:
    """Run G for the reconstruction term: style mixing off, G's buffers untouched afterwards.

    Style mixing is StyleGAN2's training-mode regulariser (``G.mixing_prob``, applied in ``forward``
    when training); a reconstruction of x from one latent must use that latent in every layer. The
    buffers (BatchNorm running statistics, StyleGAN2's ``w_avg``) are restored because they describe
    G under the prior, which the sampler (and the EMA copy, which copies them) relies on."""

    # G runs on clones of its buffers, which the pass may update in place; the originals are put
    # back afterwards (swapping the objects, not copying into them, so the autograd graph, which
    # may hold the clones, stays valid)
    originals: list[tuple[dict, str, Tensor]] = []
    for module in G.modules():
        for name, buf in module._buffers.items():
            if buf is not None:
                originals.append((module._buffers, name, buf))
                module._buffers[name] = buf.clone()
    mixing = getattr(G, "mixing_prob", None)
    if mixing is not None:
        G.mixing_prob = 0.0
    try:
        yield
    finally:
        if mixing is not None:
            G.mixing_prob = mixing
        for buffers, name, buf in originals:
            buffers[name] = buf


class CLR(Regularizer):
    """phi on D's features plus the two CLR terms."""

    def __init__(self, *, params: CLRParams, feature_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.params = params
        self.head = nn.Linear(feature_dim, latent_dim) if params.head == "affine" else None

    def d_parameters(self) -> Iterable[nn.Parameter]:
        return [] if self.head is None else list(self.head.parameters())

    def phi(self, features: Tensor) -> Tensor:
        """Eq. 4: phi(x) = sigma(f(x)), sigma affine (or the identity on D's last feature layer)."""
        return features if self.head is None else self.head(features)

    def d_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        if self.params.lambda_latent == 0:
            return {}
        # the latent G received: after every transform of the stack (advlat_qua's search, LIS)
        target = ctx.z if ctx.z_in is None else ctx.z_in
        loss = latent_consistency_loss(self.phi(ctx.fake_features), target,
                                       kind=self.params.distance, reduction=self.params.reduction)
        return {"latent": self.params.lambda_latent * loss}

    def g_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        if self.params.lambda_reconstruction == 0 or ctx.real is None:
            return {}
        latent = self.phi(ctx.real_features).detach()  # a constant for G (Sec. 3.3)
        G = ctx.G
        with reconstruction_pass(G):
            reconstructed = G(latent, ctx.real_y)
        loss = reconstruction_loss(ctx.real, reconstructed, kind=self.params.distance,
                                   reduction=self.params.reduction)
        return {"reconstruction": self.params.lambda_reconstruction * loss}


def build(params: CLRParams, ctx: BuildContext) -> CLR:
    check(params, ctx)
    return CLR(params=params, feature_dim=ctx.backbone.feature_dim,
               latent_dim=ctx.backbone.latent_dim)
