"""ACL's equations as pure functions of tensors (Yuan et al., Adversarial Code Learning, Sec. 3-4).

Logits are unnormalised scores: ``D_c(c) = sigmoid(logit)``, so ``log D_c = -softplus(-logit)``
and ``log(1 - D_c) = -softplus(logit)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def code_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D_c's side of Eq. 1 (Algorithm 1, line 9): -(log D_c(c) + log(1 - D_c(c_f))), averaged."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def code_generator_loss(fake_logits: Tensor, *, form: str = "ns") -> Tensor:
    """G_z's side of Eq. 1. ``"minimax"``: log(1 - D_c(G_z(z))) exactly as Eq. 1 is written;
    ``"ns"``: the non-saturating -log D_c(G_z(z)) (same fixed point, stronger early gradient)."""
    if form == "minimax":
        return -F.softplus(fake_logits).mean()
    if form == "ns":
        return F.softplus(-fake_logits).mean()
    raise ValueError(f"unknown code loss form {form!r}; use 'ns' or 'minimax'")


def feature_matching_loss(real_features: Tensor, rec_features: Tensor, *,
                          reduction: str = "mean") -> Tensor:
    """Eq. 4 / Algorithm 1 line 10: ||Phi(x) - Phi(G(E(x)))||_2^2 per image, averaged over the
    batch. ``reduction="sum"`` keeps the squared norm over features; ``"mean"`` divides it by the
    feature count (a per-element mean squared error, independent of D's width)."""
    sq = (real_features.flatten(1) - rec_features.flatten(1)).pow(2)
    per_image = sq.sum(1) if reduction == "sum" else sq.mean(1)
    return per_image.mean()


def pixel_reconstruction_loss(x: Tensor, rec: Tensor) -> Tensor:
    """Eq. 2: ||x - Dec(Enc(x))||_2^2, as a per-element mean (the autoencoder backbone's L_E)."""
    return (x - rec).pow(2).mean()


def mixture_centres(modes: int, dim: int, *, radius: float) -> Tensor:
    """Centres of the k-mode Gaussian prior (Sec. 5.6): the origin for k = 1; otherwise k points
    evenly spaced on a circle of ``radius`` in the first two coordinates, rotated by pi/k (so four
    modes sit at (+-r, +-r)/sqrt(2), the corners of a square)."""
    centres = torch.zeros(modes, dim)
    if modes == 1:
        return centres
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes) + math.pi / modes
    centres[:, 0] = (angles.cos() * radius).float()
    if dim > 1:
        centres[:, 1] = (angles.sin() * radius).float()
    return centres


def mixture_sample(z: Tensor, centres: Tensor, std: float, mode_index: Tensor) -> Tensor:
    """A draw from the mixture: ``centres[k] + std * z`` for a standard draw z and mode k."""
    return centres[mode_index].to(z) + std * z


def interpolate_codes(c_a: Tensor, c_b: Tensor, steps: int) -> Tensor:
    """Linear interpolation (Sec. 5.5): (B, d), (B, d) -> (B, steps, d), t = 0 .. 1 inclusive."""
    t = torch.linspace(0, 1, steps, device=c_a.device, dtype=c_a.dtype).view(1, steps, 1)
    return (1 - t) * c_a.unsqueeze(1) + t * c_b.unsqueeze(1)
