"""Augmentation as a method: ``diffaugment`` (DiffAugment's colour, translation and cutout on
everything D sees, plus optional x-flip of the data; docs/methods/diffaugment.md) and ``ada``
(adaptive discriminator augmentation: NVlabs' pipeline at a strength p steered by D's sign on the
reals; docs/methods/ada.md)."""

from __future__ import annotations

from gantk import hookimpl

from . import ada
from .ada import Ada, AdaParams
from .diffaugment import (DiffAugment, DiffAugmentParams, build, color, cutout, diff_augment,
                          translation, xflip)

__all__ = ["Ada", "AdaParams", "DiffAugment", "DiffAugmentParams", "build", "color", "cutout",
           "diff_augment", "translation", "xflip"]


@hookimpl
def gantk_register(register) -> None:
    register.method(
        "diffaugment", build, params=DiffAugmentParams,
        summary="the same differentiable colour/translation/cutout on real and fake images before D; "
                "xflip mirrors the data",
        paper="Zhao et al. 2020, Differentiable Augmentation for Data-Efficient GAN Training",
        needs=["discriminator", "images"])
    register.method(
        "ada", ada.build, params=AdaParams, check=ada.check_ada,
        summary="adaptive discriminator augmentation: NVlabs' bgc pipeline on everything D sees, "
                "its probability p steered so that E[sign(D(reals))] stays at the target",
        paper="Karras et al. 2020, Training Generative Adversarial Networks with Limited Data",
        needs=["discriminator", "images"])
