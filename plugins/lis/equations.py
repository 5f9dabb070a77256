"""The LIS paper's equations as pure functions (Jung 2017, Sec. 2 and App. K).

Indices follow the paper: LIS modules and reverser iterations are counted from 0, so module ``i``
(``i = 0 .. N_R - 1``) has the similarity weight ``lambda_R ** (1 + i)`` and the manipulation stops
before it with probability ``0.5 ** (N_R - i)``; R-iterative's iteration ``t`` (``t = 0 .. N_R``,
``t = 0`` being the raw draw ``z_0``) starts training with probability ``(1 + t) / (1 + N_R)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# ----------------------------------------------------------------------------- the constraint


def similarity_loss(z_prime: Tensor, z: Tensor) -> Tensor:
    """Eq. 2, L_R = 1/N_z sum_i (z_i - z'_i)^2, averaged over the batch. ``z`` is the target (the
    original vector) and receives no gradient."""
    return F.mse_loss(z_prime, z.detach())


def similarity_weights(similarity_weight: float, n: int) -> list[float]:
    """``[lambda_R ** (1 + i) for i in range(n)]``: the relaxed constraint of module/iteration i."""
    return [similarity_weight ** (1 + i) for i in range(n)]


# ----------------------------------------------------------------------------- G-LIS early stop


def stop_probabilities(num_modules: int) -> list[float]:
    """P(stop before module i | module i is reached) = 0.5 ** (N_R - i), i = 0 .. N_R - 1
    (Sec. 2.3; 1/8, 1/4, 1/2 for three modules)."""
    return [0.5 ** (num_modules - i) for i in range(num_modules)]


def executed_modules_distribution(num_modules: int) -> list[float]:
    """P(exactly k modules run), k = 0 .. N_R, when the stops above are tried in order."""
    probs, reach = [], 1.0
    for p in stop_probabilities(num_modules):
        probs.append(reach * p)
        reach *= 1 - p
    return probs + [reach]


def draw_executed_modules(num_modules: int, *, device: torch.device | str | None = None) -> int:
    """One per-batch draw of how many modules run. Always consumes ``num_modules`` uniforms of the
    global torch RNG (which checkpoints save), so a resumed run draws the same stops."""
    if num_modules == 0:
        return 0
    u = torch.rand(num_modules, device=device)
    stop = u < torch.tensor(stop_probabilities(num_modules), device=u.device)
    hits = torch.nonzero(stop)
    return int(hits[0]) if len(hits) else num_modules


# ----------------------------------------------------------------------------- R-iterative


def iteration_start_probabilities(iterations: int) -> list[float]:
    """p_t = (1 + t) / (1 + N_R), t = 0 .. N_R (Algorithm 2, line 13); p_{N_R} = 1."""
    return [(1 + t) / (1 + iterations) for t in range(iterations + 1)]


def iteration_trained_probabilities(iterations: int) -> list[float]:
    """P(iteration t is trained in a batch) under Algorithm 2: training switches on at t with
    probability p_t and stays on, so P = 1 - prod_{s <= t} (1 - p_s)."""
    out, off = [], 1.0
    for p in iteration_start_probabilities(iterations):
        off *= 1 - p
        out.append(1 - off)
    return out


def iteration_sampling_probabilities(iterations: int) -> list[float]:
    """How gantk picks the one iteration a step trains: proportional to how often Algorithm 2
    trains it, so that each iteration gets the same share of the updates as in the paper."""
    trained = iteration_trained_probabilities(iterations)
    total = sum(trained)
    return [p / total for p in trained]


def draw_trained_iteration(iterations: int, *, device: torch.device | str | None = None) -> int:
    """One per-batch draw of the trained iteration t (global torch RNG, one uniform)."""
    cdf = torch.tensor(iteration_sampling_probabilities(iterations), device=device).cumsum(0)
    u = torch.rand((), device=device)
    return min(int((u >= cdf).sum()), iterations)


def reverser_objective(similarity: Tensor, g_loss: Tensor, similarity_weight: float, t: int) -> Tensor:
    """R's loss at iteration t (Algorithm 2, line 21):
    lambda_R^(1+t) * L_R(z_t, z_0) + (1 - lambda_R^(1+t)) * L_G(G(z_t))."""
    w = similarity_weight ** (1 + t)
    return w * similarity + (1 - w) * g_loss


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by ``scale`` on the way back."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:  # noqa: D102
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        return grad * ctx.scale, None


def scale_grad(x: Tensor, scale: float) -> Tensor:
    """``x`` whose gradient is multiplied by ``scale``: lets one backward of L_G give G the full
    gradient and R the share (1 - lambda_R^(1+t)) of Algorithm 2's R loss."""
    return _ScaleGrad.apply(x, scale)
