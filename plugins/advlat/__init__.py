"""AdvLatGAN (Li et al., "Improving Generative Adversarial Networks via Adversarial Learning in
Latent Space", NeurIPS 2022) as gantk components.

* ``advlat_z``   - post-training transform z* (Eq. 5-6): I-FGSM on the stack's generator loss at
  sampling time (``gantk sample RUN --with advlat_z``);
* ``advlat_qua`` - Algorithm 1: the same search on the latents of D updates;
* ``advlat_div`` - Algorithm 2: the MSGAN term on the Eq. 8 hard pair found by I-FGSM;
* ``msgan``      - the plain MSGAN regulariser (Mao et al. 2019, Eq. 3-4) on random pairs;
* aliases ``qua+`` = advlat_qua + advlat_z and ``div+`` = advlat_div + advlat_z.

Choices the paper leaves open are options; docs/methods/advlat.md gives each default's reason.
"""

from __future__ import annotations

from gantk import hookimpl

from .components import (AdvLatDivParams, AdvLatQuaParams, AdvLatZParams, LatentSearch,
                         ModeSeeking, MSGANParams)
from .search import (distance_ratio, hard_pair_search, ifgsm, mode_seeking_term, pair_start,
                     search_state)

PAPER = "Li et al. 2022, Improving GANs via Adversarial Learning in Latent Space (AdvLatGAN)"
MSGAN_PAPER = "Mao et al. 2019, Mode Seeking GANs for Diverse Image Synthesis (MSGAN)"

__all__ = ["AdvLatDivParams", "AdvLatQuaParams", "AdvLatZParams", "LatentSearch", "ModeSeeking",
           "MSGANParams", "distance_ratio", "hard_pair_search", "ifgsm", "mode_seeking_term",
           "pair_start", "search_state"]


def build_z(params: AdvLatZParams, ctx) -> LatentSearch:
    return LatentSearch(params=params, phases=frozenset({"sample"}))


def build_qua(params: AdvLatQuaParams, ctx) -> LatentSearch:
    return LatentSearch(params=params, phases=frozenset({"d"}))


def build_div(params: AdvLatDivParams, ctx) -> ModeSeeking:
    return ModeSeeking(params=params, hard_pair=True)


def build_msgan(params: MSGANParams, ctx) -> ModeSeeking:
    return ModeSeeking(params=params, hard_pair=False)


def check_div(params: AdvLatDivParams, ctx) -> None:
    if params.start != "prior" and params.start_scale == 0 and params.steps > 0:
        raise ValueError("advlat_div with start_scale = 0 starts the pair search at z0 itself, "
                         "where Eq. 8's ratio is 0/0; give start_scale > 0")


@hookimpl
def gantk_register(register) -> None:
    register.latent_transform(
        "advlat_z", build_z, params=AdvLatZParams, needs=["discriminator"], paper=PAPER,
        title="AdvLatGAN-z: post-training I-FGSM latent transform",
        summary="at sampling: n steps of z <- z - eps*sign(grad_z L_G(D(G(z)))), G and D frozen "
                "(Eq. 5-6); works on any trained checkpoint")
    register.latent_transform(
        "advlat_qua", build_qua, params=AdvLatQuaParams, needs=["discriminator"], paper=PAPER,
        title="AdvLatGAN-qua: I-FGSM latents in D updates (Algorithm 1)",
        summary="the z* search on the latents of every D update; G updates use fresh latents")
    register.regularizer(
        "advlat_div", build_div, params=AdvLatDivParams, check=check_div, paper=PAPER,
        conflicts=["msgan"], title="AdvLatGAN-div: mode seeking on I-FGSM hard pairs (Algorithm 2)",
        summary="MSGAN's term on (z0, z*) with z* near z0 minimising d_I/d_z by I-FGSM (Eq. 8)")
    register.regularizer(
        "msgan", build_msgan, params=MSGANParams, paper=MSGAN_PAPER,
        title="MSGAN mode-seeking regulariser",
        summary="1 / (mean|G(z1)-G(z2)| / mean|z1-z2| + 1e-5) on random latent pairs (Eq. 3-4)")
    register.alias("qua+", ["advlat_qua", "advlat_z"], paper=PAPER,
                   title="AdvLatGAN-qua+", summary="advlat_qua in training plus advlat_z at sampling")
    register.alias("div+", ["advlat_div", "advlat_z"], paper=PAPER,
                   title="AdvLatGAN-div+", summary="advlat_div in training plus advlat_z at sampling")
