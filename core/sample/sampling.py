"""Sampling conventions shared by ``Pipeline.sample`` and the ``gantk sample``/``interpolate``
commands: truncation, noise inputs, seed lists, latent interpolation.

* **Truncation** ``psi``, StyleGAN's convention on every backbone: a lerp towards the average
  latent, ``psi = 1`` is no truncation, ``psi = 0`` the average, values in between pull towards
  it (> 1 pushes away). On a backbone with a mapping network (``Backbone.truncation ==
  "mapping"``, StyleGAN2) it is the backbone's own form, ``w = w_avg + psi (w - w_avg)``, applied to
  the generator that actually samples (the EMA copy when the run keeps one,
  ``Pipeline.sampling_generator``). On the others (``"latent"``) it is the same lerp on the prior
  draw towards the prior's mean 0, ``z -> psi z``, before the stack's latent transforms (on a
  uniform prior, values above 1 are 1: its support is bounded). ``psi = 0`` gives ``z = 0``.
  This is not BigGAN's threshold truncation (a normal truncated to ``[-psi, psi]``), under which 1
  is already a strong truncation.
* **Noise inputs** (``noise_mode``) on a backbone with per-pixel noise (``Backbone.noise_modes``,
  StyleGAN2): ``const`` (fixed per-layer maps stored with the model: an image depends on its
  latent alone), ``random`` (fresh N(0, 1) noise from the RNG), ``none`` (no noise). Pictures
  (``Pipeline.sample``, ``interpolate``, ``gantk sample``) default to the backbone's
  ``sample_noise_mode`` (StyleGAN2: ``const``, as StyleGAN2-ADA's gen_images.py);
  ``sample_batches``, what evaluation draws from, leaves the generator's own default (``random``,
  as NVlabs' metrics). A backbone declares its modes with the :class:`~gantk.Backbone` attributes
  ``noise_modes`` (a tuple) and ``sample_noise_mode`` and overrides the context manager
  ``noise_mode(generator, mode)``; with the defaults (no modes) it has no noise inputs and
  refuses an explicit mode.
* **Seeds**. Each image of a seed list is drawn on its own, with the global torch RNG set to
  ``seed`` (and restored afterwards): its latent, random noise inputs and any random draw of a
  transform depend on that seed alone, so a seed's image is the same in every list, batch and
  run on the same device.
* **Interpolation** between the seeds' latents: ``lerp`` or ``slerp`` in z, or (``space="w"``) in
  the backbone's intermediate space (StyleGAN2's W, where ``lerp`` is the usual choice). With
  ``const`` (or ``none``) noise the end frames are the seeds' own images.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from ..base.errors import SpecError


# ---------------------------------------------------------------------------- seeds


def parse_seeds(text: str | list[int] | tuple[int, ...], *, where: str = "--seeds") -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]`` (ranges inclusive, order kept, duplicates dropped)."""

    if isinstance(text, (list, tuple)):
        items = [str(int(t)) for t in text]
    else:
        items = [t.strip() for t in str(text).split(",")]
    out: list[int] = []
    for item in items:
        lo, dash, hi = item.partition("-") if not item.startswith("-") else (item, "", "")
        try:
            values = range(int(lo), int(hi) + 1) if dash else [int(item)]
        except ValueError:
            raise SpecError(f"cannot read seed {item!r} in {text!r}", where=where,
                            fix="write seeds as non-negative integers and inclusive ranges, e.g. "
                                "0-63 or 1,5,9-12.") from None
        if dash and int(hi) < int(lo):
            raise SpecError(f"the seed range {item!r} is empty", where=where,
                            fix=f"write it low-high, e.g. {hi}-{lo}.")
        for v in values:
            if v < 0 or v >= 2**63:
                raise SpecError(f"seed {v} is out of range", where=where,
                                fix="use seeds between 0 and 2**63 - 1.")
            if v not in out:
                out.append(v)
    if not out:
        raise SpecError("no seeds given", where=where, fix="give at least one seed, e.g. 0-7.")
    return out


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str) -> Iterator[None]:
    """The global torch RNG (and the device's) set to ``seed`` inside, restored afterwards."""

    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def class_labels(backbone: Any, cls: int | None, n: int, device: Any) -> Tensor | None:
    """Labels for ``n`` samples of class ``cls`` (None: the pipeline draws them)."""

    if cls is None:
        return None
    if not backbone.num_classes:
        raise SpecError(f"class {cls} was asked for but the stack is not class-conditional",
                        where="--class", fix="drop --class, or train a conditional stack "
                        "(backbone.conditional = true on labelled data).")
    if not 0 <= cls < backbone.num_classes:
        raise SpecError(f"class {cls} does not exist; the stack has {backbone.num_classes} classes",
                        where="--class", fix=f"use a class between 0 and {backbone.num_classes - 1}.")
    return torch.full((n,), cls, dtype=torch.long, device=device)


# ---------------------------------------------------------------------------- truncation


def check_truncation(backbone: Any, psi: float | None) -> float | None:
    """``psi`` validated for ``backbone``; None or a no-op value returns None (on a mapping
    backbone ``psi`` is returned even at 1, which then overrides a ``truncation_psi`` set in the
    stack: 1 means off everywhere)."""

    if psi is None:
        return None
    psi = float(psi)
    name = type(backbone).__name__
    if not math.isfinite(psi) or psi < 0:
        raise SpecError(f"truncation {psi} is not a valid strength", where="truncation",
                        fix="use a value >= 0: 1 is no truncation, 0 the average image "
                            "(0.5-0.7 is usual).")
    if backbone.truncation is None:
        raise SpecError(f"{name} does not support truncation: its latent is not drawn from a prior "
                        "that can be narrowed", where="truncation", fix="drop --truncation.")
    if backbone.truncation == "latent" and backbone.prior not in ("normal", "uniform"):
        raise SpecError(f"truncation needs a normal or uniform prior, {name} uses "
                        f"{backbone.prior!r}", where="truncation", fix="drop --truncation.")
    if backbone.truncation == "latent" and (psi == 1 or (backbone.prior == "uniform" and psi > 1)):
        return None  # the untruncated prior
    return psi


def truncate_prior(z: Tensor, prior: str, psi: float) -> Tensor:
    """The prior draw ``z`` pulled towards the prior's mean 0: ``psi z`` (see the module
    docstring; on a uniform prior ``psi`` is capped at 1). Draws nothing."""

    if prior == "uniform":
        psi = min(psi, 1.0)
    return z * psi


# ---------------------------------------------------------------------------- noise inputs


def check_noise_mode(backbone: Any, mode: str | None, *, where: str = "noise_mode") -> str | None:
    """An explicit ``mode`` validated for ``backbone`` (None stays None)."""

    if mode is None:
        return None
    modes = tuple(backbone.noise_modes)
    name = type(backbone).__name__
    if not modes:
        raise SpecError(f"{name} has no noise inputs, so there is no noise mode to choose",
                        where=where, fix="drop --noise-mode (it applies to StyleGAN2).")
    if mode not in modes:
        raise SpecError(f"unknown noise mode {mode!r}", where=where,
                        fix=f"use one of {', '.join(modes)}.")
    return mode


def picture_noise_mode(backbone: Any, mode: str | None, *, where: str = "noise_mode") -> str | None:
    """The noise mode pictures are drawn with: ``mode`` (validated), else the backbone's
    ``sample_noise_mode`` (None on backbones without noise inputs)."""

    mode = check_noise_mode(backbone, mode, where=where)
    return mode if mode is not None else backbone.sample_noise_mode


def noise_context(backbone: Any, generator: Any, mode: str | None) -> contextlib.AbstractContextManager:
    """``generator`` drawing its noise inputs as ``mode`` inside (None: as it is)."""

    if mode is None:
        return contextlib.nullcontext()
    return backbone.noise_mode(generator, mode)


# ---------------------------------------------------------------------------- interpolation


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    return a + (b - a) * t


def slerp(a: Tensor, b: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation (Shoemake 1985) between rows of ``a`` and ``b``; ``t`` of shape
    (T, 1). Falls back to lerp where the two are (anti)parallel within ``eps``."""

    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.arccos((an * bn).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    if float(so.abs().min()) < eps:
        return lerp(a, b, t)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def path(points: Tensor, steps: int, mode: str = "lerp") -> Tensor:
    """``steps`` points from each row of ``points`` to the next, t in [0, 1) per segment, plus the
    last row: ``(len(points) - 1) * steps + 1`` rows."""

    if mode not in ("lerp", "slerp"):
        raise SpecError(f"unknown interpolation {mode!r}", where="--mode", fix="use lerp or slerp.")
    fn = lerp if mode == "lerp" else slerp
    t = torch.arange(steps, dtype=points.dtype, device=points.device).unsqueeze(1) / steps
    segs = [fn(points[i:i + 1], points[i + 1:i + 2], t) for i in range(len(points) - 1)]
    return torch.cat([*segs, points[-1:]])


def interpolate_seeds(pipe: Any, seeds: list[int], steps: int, *, mode: str = "lerp",
                      space: str = "auto", truncation: float | None = None,
                      cls: int | None = None, noise_mode: str | None = None) -> Tensor:
    """Images along the path through the seeds' latents: ``(len(seeds) - 1) * steps + 1`` frames
    (on CPU), ``steps`` per segment. ``space`` is ``z``, ``w`` (the backbone's intermediate space,
    StyleGAN2's W) or ``auto`` (``w`` where the backbone has one). ``noise_mode``: the noise
    inputs (default: the backbone's picture default, StyleGAN2's ``const``); with ``random`` noise
    every frame's noise (and a conditional net's drawn class) is the first seed's, so only the
    latent moves and the first frame is that seed's own image."""

    from ..base.interfaces import LatentTransform, StepContext
    from ..train.trainer import apply_transforms

    if len(seeds) < 2:
        raise SpecError(f"interpolation needs at least two seeds, got {seeds}", where="--seeds",
                        fix="give two or more, e.g. --seeds 1,2,3.")
    if steps < 1:
        raise SpecError(f"--steps {steps} is too small", where="--steps", fix="use --steps >= 1.")
    bb, dev = pipe.backbone, pipe.device
    if space == "auto":
        space = "w" if bb.has_w_space else "z"
    if space not in ("z", "w"):
        raise SpecError(f"unknown space {space!r}", where="--space", fix="use z, w or auto.")
    if space == "w" and not bb.has_w_space:
        raise SpecError(f"{type(bb).__name__} has no intermediate latent space to interpolate in",
                        where="--space", fix="use --space z (or auto).")
    psi = check_truncation(bb, truncation)
    noise = picture_noise_mode(bb, noise_mode)
    G = pipe.sampling_generator
    transforms = [c for c in pipe.components if isinstance(c, LatentTransform)]
    y = class_labels(bb, cls, 1, dev)
    draw_label = bool(bb.num_classes) and y is None

    def replay() -> Tensor | None:
        """The draws ``Pipeline.sample`` makes before the generator (the latent, then a label
        when none is given), so that the random inputs after them are the first seed's own."""
        bb.sample_latent(1, device=dev)
        return torch.randint(bb.num_classes, (1,), device=dev) if draw_label else None

    if draw_label:
        with seeded(seeds[0], dev):
            y = replay()

    def latent(seed: int) -> Tensor:
        with seeded(seed, dev):
            z = bb.sample_latent(1, device=dev)
            if psi is not None and bb.truncation == "latent":
                z = truncate_prior(z, bb.prior, psi)
        return z

    frames = []
    with pipe.eval_mode(), torch.no_grad(), noise_context(bb, G, noise):
        z = torch.cat([latent(s) for s in seeds])
        if space == "w":
            w = torch.cat([bb.to_w(G, z[i:i + 1], y, psi=psi) for i in range(len(seeds))])
            for wi in path(w, steps, mode):
                with seeded(seeds[0], dev):
                    replay()
                    frames.append(bb.from_w(G, wi.unsqueeze(0)))
        else:
            for zi in path(z, steps, mode):
                with seeded(seeds[0], dev):
                    replay()
                    zi = zi.unsqueeze(0)
                    ctx = StepContext(phase="sample", backbone=bb, loss=pipe.loss, step=pipe.step,
                                      z=zi, y=y, generator=G)
                    z_in = apply_transforms(transforms, zi, ctx)
                    frames.append(bb.generate_truncated(G, z_in, y, psi)
                                  if psi is not None and bb.truncation == "mapping" else G(z_in, y))
    return torch.cat(frames).cpu()
