"""From a parsed StackSpec to validated, built parts, refusing what cannot work before training.

``resolve`` looks every name up in the registry and validates every option (so ``gantk check``
needs no data and no networks); ``build_backbone`` and ``build_components`` construct the parts and
check what methods need (labels, a discriminator, D features, an encoder) and what they conflict
with, each refusal naming the stack path and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import BaseModel

from ..train import ema
from ..base.errors import GantkError, IncompatibleStackError, SpecError
from ..base.interfaces import Backbone, BuildContext, Component, DataInfo, Loss
from .registry import STACKABLE, Entry, Registry
from .spec import ComponentSpec, StackSpec

#: capability -> the sentence used when it is missing
NEEDS_TEXT = {
    "discriminator": "an image discriminator, and backbone {backbone!r} has none",
    "d_features": "D's features, and backbone {backbone!r} does not expose them",
    "encoder": "an encoder from the backbone's D family, which {backbone!r} cannot build",
    "labels": "class labels, and data set {data!r} is unlabelled",
    "conditional": "a class-conditional backbone (set backbone.conditional = true on labelled data)",
    "images": "image data, and {data!r} is not images",
}


@dataclass
class Part:
    entry: Entry
    params: BaseModel
    where: str

    @property
    def options(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json")


@dataclass
class Resolved:
    spec: StackSpec  # every default filled in, the backbone family's EMA included
    data: Part
    data_info: DataInfo
    backbone: Part
    loss: Part
    methods: list[Part] = field(default_factory=list)
    registry: Registry | None = field(default=None, compare=False, repr=False)

    def providers(self, need: str) -> list[str]:
        """The registered backbones that declare ``need`` in their ``provides`` (for messages)."""
        if self.registry is None:
            return []
        return sorted(e.name for e in self.registry.entries.values()
                      if e.kind == "backbone" and need in e.provides)

    @property
    def method_names(self) -> tuple[str, ...]:
        return tuple(p.entry.name for p in self.methods)


def _part(registry: Registry, comp: ComponentSpec, kind: str | tuple[str, ...], where: str) -> Part:
    entry = registry.get(comp.name, kind, where=f"{where}.name")
    return Part(entry, entry.make_params(comp.options, where=where), where)


def resolve(spec: StackSpec, registry: Registry) -> Resolved:
    data = _part(registry, spec.data, "dataset", "data")
    try:
        info = data.entry.info(data.params)
    except GantkError:
        raise
    except (ValueError, TypeError) as exc:
        raise SpecError(str(exc), where="data", fix="correct the data options.") from None
    backbone = _part(registry, spec.backbone, "backbone", "backbone")
    loss = _part(registry, spec.loss, "loss", "loss")
    methods: list[Part] = []
    seen: dict[str, str] = {}
    for i, m in enumerate(spec.methods):
        where = f"methods[{i}]"
        names = registry.expand(m.name)
        if len(names) > 1 and m.options:
            raise SpecError(f"{m.name!r} is an alias for {' + '.join(names)} and takes no options "
                            "itself", where=where,
                            fix="list the methods it expands to and give each its options.")
        for name in names:
            if name in seen:
                raise SpecError(f"{name!r} appears twice (also in {seen[name]})", where=where,
                                fix=f"keep one {name!r} (aliases such as qua+ already include it).")
            seen[name] = where
            part = _part(registry, ComponentSpec(name=name, **m.options), STACKABLE, where)
            methods.append(part)
    for i, name in enumerate(spec.train.loggers):
        registry.get(name, "logger", where=f"train.loggers[{i}]")
    full = StackSpec(seed=spec.seed, train=ema.resolve(spec.train, backbone.entry.ema),
                     data=ComponentSpec(name=data.entry.name, **data.options),
                     backbone=ComponentSpec(name=backbone.entry.name, **backbone.options),
                     loss=ComponentSpec(name=loss.entry.name, **loss.options),
                     methods=[ComponentSpec(name=p.entry.name, **p.options) for p in methods])
    return Resolved(full, data, info, backbone, loss, methods, registry)


def check_static(res: Resolved) -> None:
    """Conflicts and data-side needs, checkable without building anything."""

    names = res.method_names
    for part in res.methods:
        clash = sorted(part.entry.conflicts & set(names))
        if clash:
            raise IncompatibleStackError(
                f"{part.entry.name!r} conflicts with {', '.join(repr(c) for c in clash)}"
                + (f" ({part.entry.cost.get('conflict_reason')})"
                   if part.entry.cost.get("conflict_reason") else ""),
                where=part.where, fix="remove one of them from the stack.")
        if "labels" in part.entry.needs and not res.data_info.labelled:
            _refuse(part, "labels", res)
        if "images" in part.entry.needs and res.data_info.kind != "image":
            _refuse(part, "images", res)


def _refuse(part: Part, need: str, res: Resolved) -> None:
    text = NEEDS_TEXT.get(need, f"{need!r}").format(backbone=res.backbone.entry.name,
                                                     data=res.data.entry.name)
    raise IncompatibleStackError(f"{part.entry.name!r} needs {text}", where=part.where,
                                 fix="choose a backbone/data set that provides it, or drop the "
                                     "method (`gantk list-plugins` shows what each one needs).")


def build_backbone(res: Resolved) -> Backbone:
    try:
        backbone = res.backbone.entry.factory(res.backbone.params, res.data_info)
    except GantkError:
        raise
    except (ValueError, TypeError) as exc:
        raise IncompatibleStackError(str(exc), where="backbone",
                                     fix="adjust the backbone or data options.") from None
    if not isinstance(backbone, Backbone):
        raise SpecError(f"backbone {res.backbone.entry.name!r} built a {type(backbone).__name__}, "
                        "not a gantk Backbone", where="backbone",
                        fix=f"report this to the plugin {res.backbone.entry.plugin!r}.")
    return backbone


def build_loss(res: Resolved) -> Loss:
    return res.loss.entry.factory(res.loss.params)


def build_context(res: Resolved, backbone: Backbone, loss: Loss, entry_name: str) -> BuildContext:
    return BuildContext(backbone=backbone, data=res.data_info, loss=loss,
                        loss_name=res.loss.entry.name, methods=res.method_names, spec=res.spec,
                        entry_name=entry_name)


def build_part(part: Part, ctx: BuildContext,
               providers: Callable[[str], list[str]] | None = None) -> list[Component]:
    """Check what ``part`` needs from the backbone, run its own check, and build it
    (``providers(need)``: the backbones that provide a need, named when it is missing)."""

    provides = ctx.backbone.provides
    for need in sorted(part.entry.needs - {"labels", "images"}):
        if need not in provides:
            text = NEEDS_TEXT.get(need, f"{need!r}").format(backbone=ctx.spec.backbone.name,
                                                             data=ctx.spec.data.name)
            which = providers(need) if providers is not None else []
            if need not in NEEDS_TEXT:
                text += f", which backbone {ctx.spec.backbone.name!r} does not provide"
            fix = (f"use a backbone that provides it ({', '.join(which)}), or drop "
                   f"{part.entry.name!r} from the stack."
                   if which else "choose a backbone that provides it, or drop the method "
                   "(`gantk list-plugins --json` shows needs).")
            raise IncompatibleStackError(f"{part.entry.name!r} needs {text}", where=part.where,
                                         fix=fix)
    try:
        if part.entry.check is not None:
            part.entry.check(part.params, ctx)
        built = part.entry.factory(part.params, ctx)
    except GantkError:
        raise
    except ValueError as exc:
        raise IncompatibleStackError(str(exc), where=part.where,
                                     fix="adjust the method's options or the stack.") from None
    comps = list(built) if isinstance(built, (list, tuple)) else [built]
    for comp in comps:
        if not isinstance(comp, Component):
            raise SpecError(f"{part.entry.name!r} built a {type(comp).__name__}, not a gantk "
                            "LatentTransform or Regularizer", where=part.where,
                            fix=f"report this to the plugin {part.entry.plugin!r}.")
        comp.entry_name = part.entry.name
    return comps


def check_generator_objective(res: Resolved, backbone: Backbone) -> None:
    """Something must train G: the adversarial game, or a method that ``provides`` a generator
    objective of its own (ACL-AE's reconstruction on ``backbone=autoencoder``)."""
    if backbone.discriminator is not None:
        return
    if any("generator_objective" in p.entry.provides for p in res.methods):
        return
    raise IncompatibleStackError(
        f"backbone {res.backbone.entry.name!r} has no discriminator, and no method in the stack "
        "gives the generator an objective of its own, so nothing would train G",
        where="backbone", fix="add a method that trains G without a discriminator (e.g. acl for "
        "ACL-AE), or choose a backbone with a discriminator.")


def build_components(res: Resolved, backbone: Backbone, loss: Loss,
                     device: torch.device) -> list[Component]:
    comps: list[Component] = []
    for part in res.methods:  # a method's own needs first: its reason is the more specific one
        ctx = build_context(res, backbone, loss, part.entry.name)
        comps += [c.to(device) for c in build_part(part, ctx, res.providers)]
    check_generator_objective(res, backbone)
    return comps
