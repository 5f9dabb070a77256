"""The four interfaces every plugin builds on: Backbone, Loss, LatentTransform, Regularizer.

A training step is a small algebra (draw latents, transform them, generate, score, add terms, step
optimisers). Each paper's method touches it in one of four places; the trainer owns the order.

Conventions shared by every component:

* constructors are keyword-only and take the component's validated ``Params`` model;
* parameters that a component wants trained by the *discriminator's* optimiser are returned by
  ``d_parameters()``, by the *generator's* optimiser by ``g_parameters()``, and a component with an
  objective of its own returns ``aux_parameters()`` and ``aux_terms(ctx)``: the trainer gives it a
  separate optimiser and steps it after the G update;
* training-time state that must survive a checkpoint (counters, running means) lives in buffers,
  so that a resumed run equals an uninterrupted one; a component never stores the backbone's
  modules as submodules (reach them through the step context instead);
* loss terms are returned already weighted, as ``{"name": scalar tensor}``; the trainer sums and
  logs them as ``<component>/<name>``;
* the G update freezes the backbone's D only: a component that scores its G-phase terms with a
  network of its own in ``d_parameters()`` (a code discriminator) holds it fixed with
  ``with frozen(net):``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Forward through ``module`` without recording its parameters in the graph (their
    ``requires_grad`` flags are restored afterwards, also on an error)."""

    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)


# ----------------------------------------------------------------------------------------------
# Data description (what a data set provides before it is loaded)


@dataclass(frozen=True)
class DataInfo:
    """What a data set will deliver, known without loading it."""

    shape: tuple[int, ...]  # one sample: (C, H, W) for images, (2,) for 2-D points
    num_classes: int | None = None  # None: unlabelled
    kind: str = "image"  # "image" or "points"
    value_range: tuple[float, float] = (-1.0, 1.0)
    modes: Tensor | None = None  # mode centres for mixture data (points), for plots and metrics
    mode_std: float | None = None

    @property
    def labelled(self) -> bool:
        return self.num_classes is not None


# ----------------------------------------------------------------------------------------------
# Backbone


class Discriminator(nn.Module):
    """D split in two so that methods can attach heads to its features.

    ``features(x, y)`` returns ``h`` of shape ``(B, feature_dim)``; ``head(h, y)`` returns logits of
    shape ``(B,)``. ``forward`` is ``head(features(x, y), y)``.
    """

    feature_dim: int

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def head(self, h: Tensor, y: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.head(self.features(x, y), y)


class Backbone(nn.Module):
    """One family's generator and discriminator.

    Subclasses set ``generator`` (``G(z, y=None) -> x``) and ``discriminator`` (a
    :class:`Discriminator`, or ``None`` for a backbone without one, such as an autoencoder), and
    fill the attributes below. ``provides`` lists capabilities that methods may ask for in
    ``registry.toml``'s ``needs``: ``"discriminator"``, ``"d_features"``, ``"encoder"``,
    ``"labels"`` (class-conditional nets).
    """

    latent_dim: int
    num_classes: int | None = None
    image_shape: tuple[int, ...]
    prior: str = "normal"  # "normal" or "uniform" (on [-1, 1])
    generator: nn.Module
    discriminator: Discriminator | None

    def __init__(self) -> None:
        super().__init__()

    @property
    def feature_dim(self) -> int:
        if self.discriminator is None:
            raise AttributeError(f"{type(self).__name__} has no discriminator")
        return self.discriminator.feature_dim

    @property
    def provides(self) -> frozenset[str]:
        caps = {"encoder"}
        if self.discriminator is not None:
            caps |= {"discriminator", "d_features"}
        if self.num_classes:
            caps |= {"labels", "conditional"}
        return frozenset(caps)

    def sample_latent(self, n: int, *, device: torch.device | str | None = None) -> Tensor:
        """Draw ``n`` latents from the prior (uses the global torch RNG, which checkpoints save)."""

        device = device or next(self.parameters()).device
        if self.prior == "uniform":
            return torch.rand(n, self.latent_dim, device=device) * 2 - 1
        return torch.randn(n, self.latent_dim, device=device)

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.generator(z, y)

    #: how sampling-time truncation works on this backbone: ``"latent"`` scales the prior draw
    #: towards its mean (psi * z, :mod:`gantk.sampling`; psi = 1 is off), ``"mapping"`` is the backbone's own form
    #: (``generate_truncated``, e.g. StyleGAN2's lerp towards ``w_avg``), ``None`` refuses it
    truncation: str | None = "latent"

    def generate_truncated(self, generator: nn.Module, z: Tensor, y: Tensor | None,
                           psi: float) -> Tensor:
        """``generator`` (this backbone's G or its EMA copy) with the backbone's own truncation
        ``psi`` (only for ``truncation = "mapping"``)."""
        raise NotImplementedError(f"{type(self).__name__} has no truncation of its own")

    def to_w(self, generator: nn.Module, z: Tensor, y: Tensor | None = None, *,
             psi: float | None = None) -> Tensor:
        """An intermediate latent space to interpolate in (StyleGAN2's W): ``z -> w``, truncated
        with ``psi`` (None: the backbone's configured default). Backbones
        without one raise NotImplementedError (``has_w_space`` is False)."""
        raise NotImplementedError(f"{type(self).__name__} has no intermediate latent space")

    def from_w(self, generator: nn.Module, w: Tensor) -> Tensor:
        """Images from ``to_w``'s latents."""
        raise NotImplementedError(f"{type(self).__name__} has no intermediate latent space")

    @property
    def has_w_space(self) -> bool:
        return type(self).to_w is not Backbone.to_w

    #: the ways a backbone with per-pixel noise inputs can draw them at sampling
    #: (``--noise-mode``, e.g. StyleGAN2's ``("const", "random", "none")``); empty: no noise inputs
    noise_modes: tuple[str, ...] = ()
    #: the mode pictures are drawn with unless asked otherwise (metrics keep the training mode)
    sample_noise_mode: str | None = None

    def noise_mode(self, generator: nn.Module, mode: str) -> contextlib.AbstractContextManager[None]:
        """A context inside which ``generator`` (G or its EMA copy) draws its noise inputs as
        ``mode`` (one of ``noise_modes``). Backbones with noise inputs override it."""
        raise NotImplementedError(f"{type(self).__name__} has no noise inputs")

    def make_encoder(self, out_dim: int, **kwargs: Any) -> nn.Module:
        """A D-family network ``x -> R^out_dim`` (for reversers and ACL's encoder)."""

        raise NotImplementedError(f"{type(self).__name__} cannot build an encoder")

    def g_parameters(self) -> Iterable[nn.Parameter]:
        return self.generator.parameters()

    def d_parameters(self) -> Iterable[nn.Parameter]:
        return [] if self.discriminator is None else self.discriminator.parameters()

    def optimizer_overrides(self) -> dict[str, dict[str, Any]]:
        """Per-network optimiser settings that the backbone insists on, e.g. StyleGAN2's lazy
        regularisation rescaling: ``{"g": {"lr_scale": c, "betas": (b1**c, b2**c)}, "d": {...}}``,
        where ``lr_scale`` multiplies ``train.lr_g``/``lr_d``. Empty by default."""

        return {}

    def g_param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Parameter groups for G's optimiser (StyleGAN2 uses this for the mapping lr multiplier)."""

        return [{"params": list(self.g_parameters()), "lr": lr}]


# ----------------------------------------------------------------------------------------------
# Loss


class Loss:
    """An adversarial objective on logits. Both methods return scalar tensors (lower is better)."""

    name: ClassVar[str] = "loss"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError


# ----------------------------------------------------------------------------------------------
# Components that join a step


class Component(nn.Module):
    """Shared base of LatentTransform and Regularizer (also usable alone for event-only parts)."""

    #: the stack entry this component came from (set by the pipeline), used to prefix log keys
    entry_name: str = ""

    def d_parameters(self) -> Iterable[nn.Parameter]:
        return []

    def g_parameters(self) -> Iterable[nn.Parameter]:
        return []

    def aux_parameters(self) -> Iterable[nn.Parameter]:
        return []

    def aux_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        return {}

    def on_step_end(self, ctx: StepContext) -> None:
        """Called after every full training step (D steps, G step, aux step)."""

    def step_logs(self) -> dict[str, Tensor]:
        """Values logged after each step under ``ENTRY/KEY`` and never optimised: the state of a
        controller, such as ADA's augmentation probability. Read after ``on_step_end``; empty by
        default."""
        return {}

    def on_attach(self, pipeline: Any) -> None:
        """Called once the component is attached to a pipeline: at build time for a stack's own
        components, and when a post-training component is added with ``sample(with_=...)``.
        A post-training method that must fit something first (a reverser) does it here."""

    def on_train_end(self, pipeline: Any) -> None:
        """Called when ``Pipeline.train`` finishes (methods with a post-training phase)."""

    def make_aux_optimizer(self, params: list[Any], train: Any) -> torch.optim.Optimizer | None:
        """The optimiser for ``aux_parameters()``; None lets the trainer build Adam with lr_g."""
        return None


class LatentTransform(Component):
    """``z -> z'`` before G. ``phases`` is a subset of ``{"d", "g", "sample"}``.

    Learned transforms (LIS modules, ACL's code generator) return their parameters from
    ``g_parameters()``. Searched transforms (I-FGSM) take gradients with respect to ``z`` only and
    must leave every parameter's ``.grad`` untouched.
    """

    phases: frozenset[str] = frozenset({"d", "g", "sample"})

    def forward(self, z: Tensor, ctx: StepContext) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class DInputTransform(Component):
    """``x -> x'`` applied to every image the discriminator sees in a training step, reals and
    fakes alike, before ``D.features`` (differentiable augmentation such as DiffAugment).

    ``forward(x, ctx, real=...)`` must be differentiable in ``x`` (G's gradient flows through it on
    fakes). ``real`` says which side the batch is; a transform of the data alone (x-flip) acts only
    when it is True. Never active at sampling time: samples are G's output as is.
    """

    def forward(self, x: Tensor, ctx: StepContext, *, real: bool) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class Regularizer(Component):
    """Extra loss terms, possibly with small networks of its own (heads, code discriminators)."""

    def d_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        return {}

    def g_terms(self, ctx: StepContext) -> dict[str, Tensor]:
        return {}


# ----------------------------------------------------------------------------------------------
# The step context


@dataclass
class StepContext:
    """What one phase of a step knows. Tensors are computed lazily and cached, so two regularisers
    never pay for the same forward pass.

    ``phase`` is ``"d"``, ``"g"``, ``"aux"`` or ``"sample"``. ``z`` is the raw prior draw, ``z_in``
    what G received after the latent transforms, ``y`` the labels given to G and D for fakes (None
    when unconditional). ``real``/``real_y`` are the data batch (None at sampling time).
    """

    phase: str
    backbone: Backbone
    loss: Loss
    step: int
    z: Tensor
    y: Tensor | None = None
    real: Tensor | None = None
    real_y: Tensor | None = None
    generator: nn.Module | None = None  # the G used in this phase (the EMA copy at sampling)
    cache: dict[str, Any] = field(default_factory=dict)
    z_in: Tensor | None = None
    d_transforms: tuple[DInputTransform, ...] = ()  # applied to reals and fakes before D
    _fake: Tensor | None = None
    _grad_fake: bool = True

    # -- generator side
    @property
    def G(self) -> nn.Module:
        return self.generator if self.generator is not None else self.backbone.generator

    @property
    def D(self) -> Discriminator:
        if self.backbone.discriminator is None:
            raise AttributeError("this backbone has no discriminator")
        return self.backbone.discriminator

    @property
    def fake(self) -> Tensor:
        if self._fake is None:
            z_in = self.z if self.z_in is None else self.z_in
            if self._grad_fake:
                self._fake = self.G(z_in, self.y)
            else:
                with torch.no_grad():
                    self._fake = self.G(z_in, self.y)
        return self._fake

    # -- discriminator side (each computed at most once per phase)
    def d_input(self, x: Tensor, *, real: bool) -> Tensor:
        """``x`` as D sees it: through the stack's D-input transforms (identity without any)."""
        for t in self.d_transforms:
            x = t(x, self, real=real)
        return x

    def _memo(self, key: str, fn: Callable[[], Tensor]) -> Tensor:
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]

    @property
    def real_features(self) -> Tensor:
        return self._memo("real_features", lambda: self.D.features(self.d_input(self.real, real=True),
                                                                    self.real_y))

    @property
    def fake_features(self) -> Tensor:
        return self._memo("fake_features", lambda: self.D.features(self.d_input(self.fake, real=False),
                                                                    self.y))

    @property
    def real_logits(self) -> Tensor:
        return self._memo("real_logits", lambda: self.D.head(self.real_features, self.real_y))

    @property
    def fake_logits(self) -> Tensor:
        return self._memo("fake_logits", lambda: self.D.head(self.fake_features, self.y))


@dataclass
class BuildContext:
    """What a method's factory (and its optional ``check``) is given.

    ``methods`` lists the names of every method in the stack (after alias expansion), so a method
    can adapt to, or refuse, its neighbours."""

    backbone: Backbone
    data: DataInfo
    loss: Loss
    loss_name: str
    methods: tuple[str, ...]
    spec: Any  # the StackSpec (typed loosely to keep this module free of pydantic)
    entry_name: str = ""
