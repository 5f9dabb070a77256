"""ACL (Yuan et al., Adversarial Code Learning for Image Generation): one method, ``acl``.

A code generator G_z maps the prior z to a code c_f = G_z(z) that G decodes; a code discriminator
D_c tells c_f from the codes c = E(x) of real images (Eq. 1). With an image discriminator this is
ACL-GAN (Eq. 4-6, Algorithm 1; ACL-GAN-GP with ``loss=wgan + gp``), with ``inference =
"classifier"`` ACL-SGAN (Sec. 4.3), and on ``backbone=autoencoder`` ACL-AE (Eq. 2-3).
``interpolate(pipeline, x_a, x_b, steps)`` decodes codes interpolated between two real images
(Sec. 5.5). docs/methods/acl.md lists every choice the paper leaves open.
"""

from __future__ import annotations

from gantk import hookimpl

from .components import (ACLParams, CodeGenerator, CodeLearning, build, check, interpolate,
                         interpolation_rows)
from .equations import (code_discriminator_loss, code_generator_loss, feature_matching_loss,
                        interpolate_codes, mixture_centres, mixture_sample)

__all__ = ["ACLParams", "CodeGenerator", "CodeLearning", "build", "check", "interpolate",
           "interpolation_rows", "code_discriminator_loss", "code_generator_loss",
           "feature_matching_loss", "interpolate_codes", "mixture_centres", "mixture_sample"]


@hookimpl
def gantk_register(register) -> None:
    register.method(
        "acl", build, params=ACLParams, check=check,
        summary="adversarial code learning: G decodes G_z(z), a code discriminator D_c matches "
                "G_z(z) to real codes E(x); modes ACL-GAN (+ feature-matching reconstruction), "
                "ACL-GAN-GP (loss=wgan + gp), ACL-SGAN (inference=classifier), ACL-AE "
                "(backbone=autoencoder); k-mode Gaussian prior option",
        paper="Yuan et al., Adversarial Code Learning for Image Generation (Sec. 3-4, Eq. 1-6, "
              "Algorithm 1)",
        needs=["encoder"],
        # ACL-AE brings G's whole objective (pixel reconstruction + code game), so acl trains on
        # a backbone without a discriminator (backbone=autoencoder)
        provides=["generator_objective"])
