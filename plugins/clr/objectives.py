"""CLR-GAN's two objectives as pure functions (Sun, Luan et al., Sec. 3.2-3.5).

* latent consistency (Eq. 5-6): ``L_CLR = Dist(phi(G(z)), z)``, added to D's loss with ``lambda_1``
  (Eq. 13);
* real-image reconstruction (Eq. 7-8): ``L_rec = Dist(x, G(phi(x)))``, added to G's loss with
  ``lambda_2`` (Eq. 14).

``Dist`` is L1 in the paper (Eq. 6 and 8) and mean squared error in the authors' released StyleGAN2
code. Eq. 6 and 8 sum |.| over a sample's dimensions and average over the batch (``reduction =
"sum"``); torch's ``L1Loss`` (the CycleGAN form the paper cites) and the authors' ``mse_loss``
average over every element (``reduction = "mean"``, the default here).
"""

from __future__ import annotations

from torch import Tensor

DISTANCES = ("l1", "mse")
REDUCTIONS = ("mean", "sum")


def distance(a: Tensor, b: Tensor, *, kind: str = "l1", reduction: str = "mean") -> Tensor:
    """``Dist(a, b)`` for batches of equal shape ``(B, ...)``.

    ``kind``: ``"l1"`` (|a - b|) or ``"mse"`` ((a - b)^2), element-wise. ``reduction``: ``"mean"``
    over every element, or ``"sum"`` over each sample's dimensions then the mean over the batch
    (Eq. 6 and 8 as printed: ``1/n sum_i ||a_i - b_i||_1``)."""

    if a.shape != b.shape:
        raise ValueError(f"Dist needs tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if kind not in DISTANCES:
        raise ValueError(f"unknown distance {kind!r}; choose one of {DISTANCES}")
    diff = a - b
    per_element = diff.abs() if kind == "l1" else diff.square()
    if reduction == "mean":
        return per_element.mean()
    if reduction == "sum":
        return per_element.flatten(1).sum(1).mean()
    raise ValueError(f"unknown reduction {reduction!r}; choose one of {REDUCTIONS}")


def latent_consistency_loss(phi_fake: Tensor, z: Tensor, *, kind: str = "l1",
                            reduction: str = "mean") -> Tensor:
    """Eq. 5-6: ``Dist(phi(G(z)), z)``; ``z`` is the latent G received (a constant here)."""

    return distance(phi_fake, z.detach(), kind=kind, reduction=reduction)


def reconstruction_loss(real: Tensor, reconstructed: Tensor, *, kind: str = "l1",
                        reduction: str = "mean") -> Tensor:
    """Eq. 7-8: ``Dist(x, G(phi(x)))``; the real batch is the target (a constant)."""

    return distance(reconstructed, real.detach(), kind=kind, reduction=reduction)
