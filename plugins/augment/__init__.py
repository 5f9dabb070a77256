"""Augmentation as a method: ``diffaugment`` (DiffAugment's colour, translation and cutout on
everything D sees, plus optional x-flip of the data). See docs/methods/diffaugment.md."""

from __future__ import annotations

from gantk import hookimpl

from .diffaugment import (DiffAugment, DiffAugmentParams, build, color, cutout, diff_augment,
                          translation, xflip)

__all__ = ["DiffAugment", "DiffAugmentParams", "build", "color", "cutout", "diff_augment",
           "translation", "xflip"]


@hookimpl
def gantk_register(register) -> None:
    register.method(
        "diffaugment", build, params=DiffAugmentParams,
        summary="the same differentiable colour/translation/cutout on real and fake images before D; "
                "xflip mirrors the data",
        paper="Zhao et al. 2020, Differentiable Augmentation for Data-Efficient GAN Training",
        needs=["discriminator", "images"])
