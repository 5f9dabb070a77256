"""CLR-GAN (Sun, Luan et al.): consistent latent representation and reconstruction.

One method, ``clr``: a latent head phi on D trained to recover G's latent from fakes (added to D's
loss, Eq. 13) and a reconstruction of real images through G(phi(x)) (added to G's loss, Eq. 14).
See docs/methods/clr.md for every choice the paper leaves open.
"""

from __future__ import annotations

from gantk import hookimpl

from .component import CLR, CLRParams, build, check, reconstruction_pass
from .objectives import distance, latent_consistency_loss, reconstruction_loss

__all__ = ["CLR", "CLRParams", "build", "check", "distance", "latent_consistency_loss",
           "reconstruction_loss", "reconstruction_pass"]


@hookimpl
def gantk_register(register) -> None:
    register.method(
        "clr", build, params=CLRParams, check=check,
        summary="latent head phi on D: lambda_1 Dist(phi(G(z)), z) on D, lambda_2 Dist(x, G(phi(x))) "
                "on G",
        paper="Sun, Luan et al., CLR-GAN: Improving GANs Stability and Quality via Consistent "
              "Latent Representation and Reconstruction (Sec. 3, Alg. 1, Eq. 13-14)",
        needs=["discriminator", "d_features"])
