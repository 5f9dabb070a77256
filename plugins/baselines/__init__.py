"""Baselines the papers compare their methods with, stacked like any method.

``aae``: the adversarial autoencoder (Makhzani et al. 2015), the baseline of the ACL paper's
Sec. 5.2 ("Comparison with Adversarial Autoencoders", Fig. 6-7): on ``backbone=autoencoder`` a
code discriminator pushes the encoder's codes E(x) towards the prior, so that decoding prior draws
generates images. ACL-AE does the reverse (it learns a map from the prior onto the codes).
"""

from __future__ import annotations

from gantk import hookimpl

from .aae import AAEParams, AdversarialAutoencoder, build, check

__all__ = ["AAEParams", "AdversarialAutoencoder", "build", "check"]


@hookimpl
def gantk_register(register) -> None:
    register.method(
        "aae", build, params=AAEParams, check=check,
        summary="adversarial autoencoder: the autoencoder's reconstruction plus a code "
                "discriminator that matches the codes E(x) to the prior; samples decode prior draws",
        paper="Makhzani et al. 2015, Adversarial Autoencoders (Sec. 2); the baseline of the ACL "
              "paper's Sec. 5.2 / Fig. 6-7",
        needs=["autoencoder"],
        provides=["generator_objective"])
