"""Pure functions of AdvLatGAN (Li et al.): the I-FGSM latent search and the mode-seeking terms.

Everything here works on tensors and callables only; the components in ``components.py`` bind
these to a step context.

* :func:`ifgsm` - Eq. 6: ``z_{i+1} = z_i - eps * sign(grad_z objective(z_i))`` for ``n`` steps,
  optionally projected onto the l_inf ball of Eq. 5 around ``z0`` after every step. Gradients are
  taken with ``torch.autograd.grad`` with respect to ``z`` only, so no parameter's ``.grad`` moves.
* :func:`distance_ratio` - the objective of Eq. 8, ``d_I(G(c, z0), G(c, z)) / d_z(z0, z)``, with
  mean absolute distances.
* :func:`mode_seeking_term` - MSGAN's regulariser (Eq. 3-4) in the form of the MSGAN code:
  ``1 / (mean|x1 - x2| / mean|z1 - z2| + 1e-5)``, both means over the whole batch.
* :func:`search_state` - the network state during a search: train/eval mode and whether BatchNorm
  running statistics and spectral-norm power-iteration vectors touched by the search's forward
  passes are put back afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import Tensor, nn

from gantk import float32_under_fp16

# ----------------------------------------------------------------------------- I-FGSM (Eq. 5-6)


def ifgsm(z0: Tensor, objective: Callable[[Tensor], Tensor], *, steps: int, step_size: float,
          radius: float | None = None, start: Tensor | None = None,
          bounds: tuple[float, float] | None = None) -> Tensor:
    """Minimise ``objective`` over ``z`` by ``steps`` signed-gradient steps of size ``step_size``.

    ``objective(z)`` returns a scalar; for a batch it should be a sum or mean of per-sample terms
    so that every row of ``z`` follows its own gradient (the sign makes the scale irrelevant).
    ``radius`` projects onto ``{z : ||z - z0||_inf <= radius}`` after each step (Eq. 5); ``None``
    leaves the implicit radius ``steps * step_size`` (Eq. 6 as printed, and the authors' code).
    ``start`` is where the iteration begins (default ``z0``); ``bounds`` clamps to a bounded
    prior's support. Returns a detached tensor; a coordinate with zero gradient does not move.
    """

    z0 = z0.detach()
    z = (z0 if start is None else start).detach().clone()
    with torch.enable_grad(), float32_under_fp16():  # fp16 gradients to z underflow to 0
        for _ in range(steps):
            z.requires_grad_(True)
            loss = objective(z)
            (grad,) = torch.autograd.grad(loss, z, allow_unused=True)
            z = z.detach()
            if grad is None:  # the objective does not depend on z: nothing to follow
                break
            z = z - step_size * grad.sign()
            if radius is not None:
                z = torch.maximum(torch.minimum(z, z0 + radius), z0 - radius)
            if bounds is not None:
                z = z.clamp(*bounds)
    return z.detach()


# ----------------------------------------------------------------------------- distances (Eq. 3, 8)


def mean_abs_distance(a: Tensor, b: Tensor, *, per_sample: bool) -> Tensor:
    """Mean absolute difference, per row ``(B,)`` or over the whole batch ``()``."""

    diff = (a - b).abs().flatten(1)
    return diff.mean(1) if per_sample else diff.mean()


def distance_ratio(x0: Tensor, x: Tensor, z0: Tensor, z: Tensor, *, stabiliser: float = 0.0,
                   per_sample: bool = True) -> Tensor:
    """Eq. 8's ratio ``d_I(x0, x) / (d_z(z0, z) + stabiliser)`` with mean absolute distances.

    ``per_sample`` gives one ratio per pair ``(B,)``; otherwise one batch ratio (the MSGAN form)."""

    d_image = mean_abs_distance(x0, x, per_sample=per_sample)
    d_latent = mean_abs_distance(z0, z, per_sample=per_sample)
    return d_image / (d_latent + stabiliser)


def mode_seeking_term(x1: Tensor, x2: Tensor, z1: Tensor, z2: Tensor, *, eps: float = 1e-5) -> Tensor:
    """MSGAN's loss ``1 / (d_I(x1, x2) / d_z(z1, z2) + eps)`` with batch-mean absolute distances.

    Minimising it maximises Eq. 3 (the paper's remark that lambda_ms can be read as negative)."""

    return 1.0 / (distance_ratio(x1, x2, z1, z2, per_sample=False) + eps)


def pair_start(z0: Tensor, *, how: str, scale: float,
               prior: Callable[[int], Tensor] | None = None) -> Tensor:
    """Where the Eq. 8 pair search begins: ``gaussian`` z0 + N(0, scale^2) (the authors' code uses
    0.08), ``uniform`` z0 + U(-scale, scale), or ``prior`` an independent prior draw (a random MSGAN
    pair, then searched)."""

    if how == "gaussian":
        return z0 + scale * torch.randn_like(z0)
    if how == "uniform":
        return z0 + scale * (2 * torch.rand_like(z0) - 1)
    if how == "prior":
        if prior is None:
            raise ValueError("pair start 'prior' needs a prior sampler")
        return prior(z0.shape[0]).to(z0)
    raise ValueError(f"unknown pair start {how!r} (gaussian, uniform, prior)")


def hard_pair_search(G: Callable[[Tensor], Tensor], z0: Tensor, x0: Tensor, *, steps: int,
                     step_size: float, start: Tensor, radius: float | None = None,
                     stabiliser: float = 1e-5, per_sample: bool = True, inverse: bool = False,
                     bounds: tuple[float, float] | None = None) -> Tensor:
    """Eq. 8: I-FGSM from ``start`` towards the ``z`` near ``z0`` whose image ``G(z)`` is closest to
    ``x0 = G(z0)`` relative to their latent distance (``inverse``: maximise the ratio instead,
    the "Eq. 8-inv" column of Table 1)."""

    x0 = x0.detach()
    sign = -1.0 if inverse else 1.0

    def objective(z: Tensor) -> Tensor:
        ratio = distance_ratio(x0, G(z), z0, z, stabiliser=stabiliser, per_sample=per_sample)
        return sign * ratio.sum()

    return ifgsm(z0, objective, steps=steps, step_size=step_size, radius=radius, start=start,
                 bounds=bounds)


# ----------------------------------------------------------------------------- network state


def _unique(modules: Iterable[nn.Module | None]) -> list[nn.Module]:
    seen: dict[int, nn.Module] = {}
    for m in modules:
        if m is not None:
            seen.setdefault(id(m), m)
    return list(seen.values())


@contextlib.contextmanager
def search_state(modules: Iterable[nn.Module | None], *, mode: str = "current",
                 restore_buffers: bool = True) -> Iterator[None]:
    """Run a search with ``modules`` in ``mode`` (``current``: leave as is, ``eval`` or ``train``)
    and, with ``restore_buffers``, put every buffer (BatchNorm running statistics, spectral-norm
    ``u``/``v`` vectors) back afterwards so the search leaves no trace on the nets."""

    mods = _unique(modules)
    flags = [(sub, sub.training) for m in mods for sub in m.modules()]
    saved: list[tuple[Tensor, Tensor]] = []
    if restore_buffers:
        ids: set[int] = set()
        for m in mods:
            for b in m.buffers():
                if id(b) not in ids:
                    ids.add(id(b))
                    saved.append((b, b.detach().clone()))
    if mode in ("eval", "train"):
        for m in mods:
            m.train(mode == "train")
    elif mode != "current":
        raise ValueError(f"unknown network mode {mode!r} (current, eval, train)")
    try:
        yield
    finally:
        for sub, flag in flags:
            sub.training = flag
        # through .data: the phase's own forward (ctx.fake) may hold these buffers in its graph,
        # and a tracked in-place write would invalidate that graph's backward
        for b, value in saved:
            b.data.copy_(value)
