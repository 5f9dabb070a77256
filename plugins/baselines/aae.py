"""The adversarial autoencoder (AAE; Makhzani et al. 2015, Sec. 2) on ``backbone=autoencoder``.

A code discriminator D_z tells prior draws z ~ p(z) (the backbone's prior: "real") from the codes
E(x) of real images ("fake"); the encoder learns to fool it while the autoencoder reconstructs, so
that q(z) = E_x[q(z|x)] matches p(z) and decoding prior draws generates images. How it maps onto
the trainer's step:

* D phase: ``code_d`` = BCE(D_z(z), 1) + BCE(D_z(E(x)), 0), E(x) without grad; D_z steps.
* G phase: ``reconstruction`` = the backbone's L_E (which trains Enc_x and Dec_x) and ``code_g`` =
  BCE(D_z(E(x)), 1), the non-saturating regularisation phase, with D_z frozen; Enc_x and Dec_x
  step once on the weighted sum.

The paper alternates a reconstruction phase and a regularisation phase with separate optimiser
steps per mini-batch; one step on the weighted sum is the common implementation (the gradients of
the two phases add). Sampling decodes z ~ p(z) directly: no latent transform.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from gantk import BuildContext, Regularizer, StepContext, frozen


class AAEParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code_hidden: int = Field(256, ge=1, le=16_384, description="width of D_z's two hidden layers "
                             "(Makhzani et al.: 1000; 256 is the width of ACL's code "
                             "discriminator, for a like-for-like comparison)")
    code_adversarial_weight: float = Field(1.0, ge=0, description="weight of the regularisation "
                                           "phase: D_z's loss and the encoder's loss code_g")
    reconstruction_weight: float = Field(1.0, ge=0, description="weight of the backbone's "
                                         "reconstruction L_E")


def code_discriminator_mlp(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                         nn.LeakyReLU(0.2), nn.Linear(hidden, 1))


def discriminator_loss(prior_logits: Tensor, code_logits: Tensor) -> Tensor:
    """D_z's loss: prior draws are real (1), encoder codes fake (0), binary cross-entropy."""

    return (F.binary_cross_entropy_with_logits(prior_logits, torch.ones_like(prior_logits))
            + F.binary_cross_entropy_with_logits(code_logits, torch.zeros_like(code_logits)))


def encoder_loss(code_logits: Tensor) -> Tensor:
    """The regularisation phase's encoder loss: -log D_z(E(x)) (non-saturating)."""

    return F.binary_cross_entropy_with_logits(code_logits, torch.ones_like(code_logits))


class AdversarialAutoencoder(Regularizer):
    """D_z and the AAE's terms; the encoder and decoder are the backbone's."""

    def __init__(self, *, params: AAEParams, dim: int) -> None:
        super().__init__()
        self.params = params
        self.code_discriminator = code_discriminator_mlp(dim, params.code_hidden)

    def d_parameters(self):
        return list(self.code_discriminator.parameters())

    def logits(self, codes: Tensor) -> Tensor:
        return self.code_discriminator(codes).squeeze(1)

    def d_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        bb = ctx.backbone
        with torch.no_grad():
            codes = bb.encode(ctx.real)
        prior = bb.sample_latent(codes.shape[0], device=codes.device)
        loss = discriminator_loss(self.logits(prior), self.logits(codes))
        return {"code_d": self.params.code_adversarial_weight * loss}

    def g_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        p, bb = self.params, ctx.backbone
        with frozen(self.code_discriminator):  # D_z is held fixed in this phase
            adversarial = encoder_loss(self.logits(bb.encode(ctx.real)))
        return {"reconstruction": p.reconstruction_weight * bb.reconstruction_loss(ctx.real),
                "code_g": p.code_adversarial_weight * adversarial}


def check(params: AAEParams, ctx: BuildContext) -> None:
    if "acl" in ctx.methods:
        raise ValueError("aae and acl both train the autoencoder (each adds its reconstruction) "
                         "and map codes in opposite directions; stack one of them")
    if getattr(ctx.backbone, "variational", False):
        raise ValueError("aae matches the encoder's codes to the prior adversarially, and "
                         "backbone.kl_weight > 0 makes a VAE that matches them with a KL term; "
                         "set kl_weight = 0 for an AAE")


def build(params: AAEParams, ctx: BuildContext) -> AdversarialAutoencoder:
    check(params, ctx)
    return AdversarialAutoencoder(params=params, dim=ctx.backbone.latent_dim)
