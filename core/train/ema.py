"""The exponential moving average (EMA) of G that sampling and evaluation use.

Two forms, both set under ``train``:

* a constant per-step decay, ``ema_decay`` (rosinality's stylegan2-pytorch: ``0.5 ** (32 / 10000)``);
* a half-life in images with an optional ramp-up (NVlabs' stylegan2-ada-pytorch), ``ema_halflife_kimg``
  and ``ema_rampup``: before the G step that has seen ``n = (step - 1) * batch_size`` images,

      half_life = ema_halflife_kimg * 1000              (images)
      half_life = min(half_life, n * ema_rampup)        (with a ramp-up)
      beta      = 0.5 ** (batch_size / half_life)       (beta = 0 while half_life is 0)

  so the average starts as a copy of G and only gets long once training has seen enough images:
  sensible for short runs too.

After every G step the trainer does ``G_ema <- beta * G_ema + (1 - beta) * G`` on the parameters
and copies the buffers. A backbone family declares the EMA its original uses with
``register.backbone(..., ema=EmaDefault(...))``; :func:`resolve` fills it into the stack when the user
set none of the ``train.ema_*`` settings, so the stored spec (``spec.json``, checkpoints, ``gantk
check``) always says which EMA a run used. An explicit setting, ``ema_decay = 0`` (off) included,
always wins.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn



class EmaSettings(Protocol):
    """The ``train`` settings the EMA reads (:class:`gantk.stack.spec.TrainSpec` has them). A
    protocol, not an import: the step sits below the spec models and must not import them."""

    batch_size: int
    ema_decay: float | None
    ema_halflife_kimg: float | None
    ema_rampup: float | None

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any: ...

FIELDS = ("ema_decay", "ema_halflife_kimg", "ema_rampup")


@dataclass(frozen=True)
class EmaDefault:
    """The EMA a backbone family's original uses; give exactly one of ``decay`` (a constant
    per-step decay) and ``halflife_kimg_per_batch`` (the half-life in thousands of images per
    sample of the batch: NVlabs' ``ema_kimg = batch * 10 / 32`` is ``10 / 32``), and optionally
    ``rampup`` with the latter. ``source`` names where the numbers come from."""

    decay: float | None = None
    halflife_kimg_per_batch: float | None = None
    rampup: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if (self.decay is None) == (self.halflife_kimg_per_batch is None):
            raise ValueError("EmaDefault: give exactly one of decay and halflife_kimg_per_batch")
        if self.decay is not None and not 0 <= self.decay < 1:
            raise ValueError(f"EmaDefault: decay must be in [0, 1), got {self.decay}")
        if self.halflife_kimg_per_batch is not None and not self.halflife_kimg_per_batch > 0:
            raise ValueError("EmaDefault: halflife_kimg_per_batch must be > 0")
        if self.rampup is not None and (self.decay is not None or not self.rampup > 0):
            raise ValueError("EmaDefault: rampup must be > 0 and goes with halflife_kimg_per_batch")

    def settings(self, batch_size: int) -> dict[str, float | None]:
        """The ``train.ema_*`` values this default stands for at ``batch_size``."""
        if self.decay is not None:
            return {"ema_decay": self.decay, "ema_halflife_kimg": None, "ema_rampup": None}
        return {"ema_decay": None, "ema_halflife_kimg": self.halflife_kimg_per_batch * batch_size,
                "ema_rampup": self.rampup}


def user_set(train: EmaSettings) -> bool:
    """Whether the stack sets any ``train.ema_*`` value (then the family default stays out)."""
    return any(getattr(train, name) is not None for name in FIELDS)


def resolve(train: EmaSettings, default: EmaDefault | None) -> EmaSettings:
    """``train`` with its EMA settings filled in: the user's when given, else the backbone
    family's ``default``, else off (``ema_decay = 0``)."""
    if user_set(train):
        return train
    values = default.settings(train.batch_size) if default is not None else {"ema_decay": 0.0}
    return train.model_copy(update=values)


def enabled(train: EmaSettings) -> bool:
    return bool(train.ema_decay) or train.ema_halflife_kimg is not None


def beta(train: EmaSettings, step: int) -> float:
    """The decay applied after G step ``step`` (1-based), from a resolved ``train``."""
    if train.ema_halflife_kimg is None:
        return float(train.ema_decay or 0.0)
    half_life = train.ema_halflife_kimg * 1000
    if train.ema_rampup is not None:
        half_life = min(half_life, (step - 1) * train.batch_size * train.ema_rampup)
    return 0.5 ** (train.batch_size / half_life) if half_life > 0 else 0.0


def describe(train: EmaSettings) -> str:
    """One line for a user: which EMA a resolved ``train`` uses."""
    if train.ema_halflife_kimg is not None:
        ramp = f", ramp-up {train.ema_rampup:g}" if train.ema_rampup is not None else ""
        return f"EMA of G: half-life {train.ema_halflife_kimg:g} kimg{ramp}"
    return f"EMA of G: decay {train.ema_decay:g} per step" if enabled(train) else "EMA of G: off"


@torch.no_grad()
def update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` on parameters; buffers are copied."""
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p.detach(), 1 - decay)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)


def make(generator: nn.Module) -> nn.Module:
    """A frozen copy of ``generator`` in eval mode, to be averaged into."""
    copy_ = copy.deepcopy(generator).eval()
    for p in copy_.parameters():
        p.requires_grad_(False)
    return copy_
