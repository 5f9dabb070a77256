"""The sampling half of the Pipeline: latents through the stack's (and ``with_``) sampling
transforms into the generator that sampling uses, in eval mode, batch by batch.

A mixin of :class:`gantk.Pipeline` (kept apart so that each file stays one concern); the
methods are the Pipeline's public API (``pipe.sample``, ``pipe.sample_batches``, ...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..base.interfaces import Component, LatentTransform, StepContext
from ..sample import sampling
from ..sample.viz import save_samples
from ..stack import build as _build
from ..stack.spec import ComponentSpec
from ..train.trainer import apply_transforms


class Sampling:
    """Sampling methods of :class:`gantk.Pipeline` (which provides backbone, ema, components,
    registry, resolved, device, world, loss, step, manager and real_data)."""

    @property
    def sampling_generator(self) -> torch.nn.Module:
        """The G that sampling and evaluation use: the EMA copy when the stack keeps one, else the
        backbone's generator (the one rule; plugins that generate call this too)."""
        return self.ema if self.ema is not None else self.backbone.generator

    def extra_components(self, with_: list[Any] | None) -> list[Component]:
        extra: list[Component] = []
        have = {c.entry_name for c in self.components}
        for i, item in enumerate(with_ or []):
            comp_spec = ComponentSpec(name=item) if isinstance(item, str) else ComponentSpec(**item)
            for name in self.registry.expand(comp_spec.name):
                if name in have:
                    continue
                where = f"with[{i}]"
                entry = self.registry.get(name, ("latent_transform", "method"), where=f"{where}.name")
                part = _build.Part(entry, entry.make_params(comp_spec.options, where=where), where)
                ctx = _build.build_context(self.resolved, self.backbone, self.loss, name)
                for comp in _build.build_part(part, ctx):
                    comp.to(self.device)
                    comp.on_attach(self)
                    extra.append(comp)
        return extra

    def sample_transforms(self, with_: list[Any] | None = None) -> list[dict[str, Any]]:
        """The latent transforms active at sampling, the stack's own (``from: "stack"``) and the
        ``with_`` ones (``from: "with"``), as ``{"name", **options, "from"}`` records: what an
        evaluation row stores under ``with``. Nothing is built."""
        out: list[dict[str, Any]] = []
        for comp, part in zip(self.components, self._component_parts()):
            if isinstance(comp, LatentTransform) and "sample" in comp.phases:
                out.append({"name": comp.entry_name, **part, "from": "stack"})
        have = {r["name"] for r in out} | {c.entry_name for c in self.components}
        for item in with_ or []:
            spec = ComponentSpec(name=item) if isinstance(item, str) else ComponentSpec(**item)
            for name in self.registry.expand(spec.name):
                if name not in have:
                    out.append({"name": name, **spec.options, "from": "with"})
                    have.add(name)
        return out

    def _component_parts(self) -> list[dict[str, Any]]:
        by_name = {p.entry.name: p.options for p in self.resolved.methods}
        return [dict(by_name.get(c.entry_name, {})) for c in self.components]

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        was = self.backbone.training
        self.backbone.eval()
        try:
            yield
        finally:
            self.backbone.train(was)

    def sample_batches(self, n: int, *, batch_size: int = 500, with_: list[Any] | None = None,
                       y: Tensor | None = None, return_latents: bool = False, split: bool = False,
                       truncation: float | None = None, seeds: list[int] | None = None,
                       noise_mode: str | None = None,
                       ) -> Iterator[Tensor | tuple[Tensor, Tensor, Tensor | None]]:
        """Generate ``n`` samples in batches (bounded memory); uses the EMA G when there is one.

        ``split`` (under torchrun): every rank draws the same latents, keeps its share of each
        batch (``distributed.share_sizes``) and generates only that. ``truncation``, ``seeds``
        and ``noise_mode`` follow :mod:`gantk.sampling`: with ``seeds`` each image is drawn alone
        from its seed (``n`` is ``len(seeds)``, one image per batch); ``noise_mode`` None leaves
        the generator's noise inputs as they are (random: what evaluation draws from)."""
        psi = sampling.check_truncation(self.backbone, truncation)
        noise_mode = sampling.check_noise_mode(self.backbone, noise_mode)
        transforms = [c for c in self.components + self.extra_components(with_)
                      if isinstance(c, LatentTransform)]
        G = self.sampling_generator
        if seeds is not None:
            n, batch_size = len(seeds), 1
        done = 0
        with self.eval_mode(), sampling.noise_context(self.backbone, G, noise_mode):
            while done < n:
                b = min(batch_size, n - done)
                with (sampling.seeded(seeds[done], self.device) if seeds is not None
                      else contextlib.nullcontext()):
                    out = self._sample_one_batch(G, transforms, b, None if y is None else
                                                 y[done:done + b], psi, split=split)
                done += b
                yield out if return_latents else out[0]

    def _sample_one_batch(self, G: torch.nn.Module, transforms: list[LatentTransform], b: int,
                          y: Tensor | None, psi: float | None, *, split: bool = False,
                          ) -> tuple[Tensor, Tensor, Tensor | None]:
        bb = self.backbone
        z = bb.sample_latent(b, device=self.device)
        if psi is not None and bb.truncation == "latent":
            z = sampling.truncate_prior(z, bb.prior, psi)
        yb = None
        if bb.num_classes:
            yb = (y.to(self.device) if y is not None else
                  torch.randint(bb.num_classes, (b,), device=self.device))
        if split:
            part = self.world.share(b)
            z, yb = z[part], (yb[part] if yb is not None else None)
        ctx = StepContext(phase="sample", backbone=bb, loss=self.loss, step=self.step, z=z, y=yb,
                          generator=G)
        with torch.no_grad():
            z_in = apply_transforms(transforms, z, ctx)
            if psi is not None and bb.truncation == "mapping":
                x = bb.generate_truncated(G, z_in, yb, psi)
            else:
                x = G(z_in, yb)
        return x, z_in, yb

    def sample(self, n: int = 64, *, with_: list[Any] | None = None, y: Tensor | None = None,
               batch_size: int = 500, return_latents: bool = False,
               truncation: float | None = None, seeds: list[int] | str | None = None,
               noise_mode: str | None = None):
        """``n`` samples (on CPU). ``with_`` adds post-training transforms, e.g. ``["advlat_z"]``
        or ``[{"name": "advlat_z", "steps": 50}]``. ``truncation`` (psi) pulls the latents towards
        their average (see :mod:`gantk.sampling`: StyleGAN2's ``w_avg`` lerp, ``psi z`` elsewhere;
        1 or None: off). ``seeds`` (a list or ``"0-63"``) draws one image per seed, the same image
        for the same seed in any list or run; ``n`` is then ignored. ``noise_mode``: StyleGAN2's
        noise inputs, ``const`` (the default: deterministic per seed), ``random`` or ``none``."""
        if seeds is not None:
            seeds = sampling.parse_seeds(seeds, where="seeds")
            n = len(seeds)
        noise_mode = sampling.picture_noise_mode(self.backbone, noise_mode)
        parts = list(self.sample_batches(n, batch_size=batch_size, with_=with_, y=y,
                                         return_latents=return_latents, truncation=truncation,
                                         seeds=seeds, noise_mode=noise_mode))
        if return_latents:
            x = torch.cat([p[0] for p in parts]).cpu()
            z = torch.cat([p[1] for p in parts]).cpu()
            ys = [p[2] for p in parts if p[2] is not None]
            out = (x, z, torch.cat(ys).cpu() if ys else None)
        else:
            out = torch.cat(parts).cpu()
        self.manager.hook.gantk_on_sample(pipeline=self, samples=out[0] if return_latents else out)
        return out

    def interpolate(self, seeds: list[int] | str, steps: int = 8, *, mode: str = "lerp",
                    space: str = "auto", truncation: float | None = None,
                    cls: int | None = None, noise_mode: str | None = None) -> Tensor:
        """Frames along the path through the seeds' latents (see
        :func:`gantk.sampling.interpolate_seeds`): ``lerp``/``slerp``, in z or StyleGAN2's W;
        ``noise_mode`` as in :meth:`sample`."""
        return sampling.interpolate_seeds(self, sampling.parse_seeds(seeds, where="seeds"), steps,
                                          mode=mode, space=space, truncation=truncation, cls=cls,
                                          noise_mode=noise_mode)

    def save_picture(self, x: Tensor, path: str | Path, *, title: str = "") -> Path:
        """Samples as a PNG: an image grid, or for 2-D data a scatter plot over the real modes."""
        real = self.real_data()[0][:5000] if self.data_info.kind == "points" else None
        return save_samples(x, path, info=self.data_info, real=real, title=title)

    # ------------------------------------------------------------------ persistence
