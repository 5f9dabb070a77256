"""The LIS paper's methods (Jung 2017, "Learning to Avoid Errors in GANs by Manipulating Input
Spaces"): ``lis`` (G-LIS, Sec. 2.3) and ``reverser`` (R-separate, Sec. 2.1; R-iterative, Sec. 2.2).

See docs/methods/lis.md for the choices the paper leaves open and the experiments.
"""

from __future__ import annotations

from gantk import hookimpl

from . import glis, reverser
from .glis import LISParams, LISSimilarity, LISTransform, module_images, only_modules
from .reverser import ReverserIterative, ReverserParams, ReverserSeparate, ReverserSimilarity

PAPER = "Jung 2017, Learning to Avoid Errors in GANs by Manipulating Input Spaces"

__all__ = ["LISParams", "LISSimilarity", "LISTransform", "ReverserIterative", "ReverserParams",
           "ReverserSeparate", "ReverserSimilarity", "module_images", "only_modules"]


@hookimpl
def gantk_register(register) -> None:
    register.method("lis", glis.build, params=LISParams, check=glis.check,
                    summary="G-LIS: N_R residual learned-input-space modules before G with the "
                            "lambda_R^(1+i) similarity constraint (Sec. 2.3)",
                    paper=PAPER, needs=["discriminator"])
    register.method("reverser", reverser.build, params=ReverserParams, check=reverser.check,
                    summary="reverser R: 'separate' fits R after training and samples G(R(G(z))); "
                            "'iterative' trains R with G and D (Sec. 2.1-2.2)",
                    paper=PAPER, needs=["encoder"])
