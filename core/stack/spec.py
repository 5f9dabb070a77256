"""Stack specs: TOML in either form, ``--set`` overrides, and validation against the registry.

Two forms load to the same :class:`StackSpec`::

    stack = "backbone=dcgan + clr + advlat_z"       # shorthand (loss=, data= may appear too)

    [backbone]                                       # tables, options inline
    name = "dcgan"
    [[methods]]
    name = "clr"
    lambda_latent = 5.0

With the shorthand, ``[backbone]``/``[loss]`` tables may still give options (their ``name`` may be
left out) and ``[[methods]]`` entries give options to methods the shorthand names.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from ..base.errors import SpecError, suggest
from ..base.safeio import trim
from .stackfile import (MAX_DEPTH, MAX_INT, MAX_SPEC_BYTES, _merge_shorthand, apply_overrides,
                        check_shape, load_toml, parse_shorthand, parse_toml_text, parse_value)

# The stack-file readers live in :mod:`gantk.stack.stackfile`; they stay importable from here.
__all__ = ["BOOKKEEPING", "ComponentSpec", "DEVICE_PATTERN", "MAX_DEPTH", "MAX_INT", "MAX_SPEC_BYTES", "MAX_STEPS",
           "StackSpec", "TrainSpec", "apply_overrides", "check_shape", "load_toml",
           "parse_shorthand", "parse_spec", "parse_toml_text", "parse_value"]


MAX_STEPS = 10**9

# keys that say how a run is watched and run, not what it computes: a run directory resumes,
# and a checkpoint loads, with any of them changed (docs/stacks.md). data.download only lets
# torchvision fetch missing files (a loaded run never downloads); data.in_memory reads the same
# pixels in the same order; data.max_pixels is a safety limit checked before decoding.
BOOKKEEPING = frozenset(f"train.{k}" for k in (
    "steps", "log_every", "sample_every", "ckpt_every", "keep_checkpoints", "eval_every",
    "eval_n", "eval_metrics", "num_samples", "loggers", "workers", "threads")) | frozenset(
    f"data.{k}" for k in ("download", "in_memory", "max_pixels"))
DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:[0-9]{1,2})?)$"

_Beta = Annotated[float, Field(ge=0, lt=1)]


class ComponentSpec(BaseModel):
    """A named component with its options (the options are validated by the component's Params)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(..., min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.+\-]+$")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TrainSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    steps: int = Field(2000, ge=0, le=MAX_STEPS, description="total generator updates")
    batch_size: int = Field(64, ge=1, le=65_536)
    n_critic: int = Field(1, ge=1, le=100, description="D updates per G update")
    lr_g: float = Field(2e-4, gt=0, le=10)
    lr_d: float = Field(2e-4, gt=0, le=10)
    betas: tuple[_Beta, _Beta] = (0.5, 0.999)
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    weight_decay: float = Field(0.0, ge=0, le=10)
    ema_decay: float | None = Field(
        None, ge=0, lt=1, description="EMA of G for sampling and evaluation, a constant decay per "
        "step; 0 turns it off; unset (with the two below): the backbone family's default")
    ema_halflife_kimg: float | None = Field(
        None, gt=0, le=1e9, description="EMA half-life in thousands of images (NVlabs' ema_kimg), "
        "instead of ema_decay")
    ema_rampup: float | None = Field(
        None, gt=0, le=1e3, description="with ema_halflife_kimg: cap the half-life at this "
        "fraction of the images seen so far (NVlabs' ema_rampup)")
    log_every: int = Field(50, ge=1, le=MAX_STEPS)
    sample_every: int = Field(500, ge=0, le=MAX_STEPS,
                              description="sample grid/plot every N steps; 0: only at the end")
    ckpt_every: int = Field(500, ge=0, le=MAX_STEPS,
                            description="checkpoint every N steps; 0: only at the end")
    keep_checkpoints: int = Field(3, ge=1, le=10_000)
    eval_every: int = Field(0, ge=0, le=MAX_STEPS,
                            description="evaluate every N steps; 0: never during training")
    eval_metrics: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list,
                                                                       max_length=64)
    eval_n: int = Field(2000, ge=10, le=1_000_000)
    best_metric: str | None = Field(None, max_length=100,
                                    description="keep the checkpoint that is best by this metric")
    num_samples: int = Field(64, ge=1, le=10_000,
                             description="samples in each grid (points for 2-D data: 2000)")
    loggers: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=16, description="experiment trackers fed through the "
        "event hooks, e.g. [\"tensorboard\"] (`gantk list-plugins`)")
    device: str = Field("auto", max_length=20,
                        description="'auto', 'cpu', 'mps', 'cuda', 'cuda:1', ...")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast dtype of the forward passes (fp16 adds a gradient scaler)")
    channels_last: bool = Field(False, description="image networks and batches in NHWC order")
    compile: bool = Field(False, description="torch.compile the generator and discriminator")
    sync_batchnorm: bool = Field(False, description="under torchrun: BatchNorm over the global "
                                 "batch (CUDA only); off: per rank")
    xflip: bool = Field(False, description="mirror each real image left-right with probability 1/2")
    workers: int = Field(0, ge=0, le=256,
                         description="DataLoader worker processes for image data")
    threads: int | None = Field(None, ge=1, le=1024,
                                description="torch CPU threads while training; unset: "
                                "OMP_NUM_THREADS, else the free physical cores (at most 8)")

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not re.fullmatch(DEVICE_PATTERN, device):
            raise ValueError(f"unknown device {device!r}: use auto, cpu, mps, cuda or cuda:N")
        return device

    @model_validator(mode="after")
    def _one_ema_form(self) -> TrainSpec:
        if self.ema_halflife_kimg is not None and self.ema_decay is not None:
            raise ValueError("ema_decay and ema_halflife_kimg are two forms of the same EMA: set "
                             "one (ema_decay = 0 turns the EMA off)")
        if self.ema_rampup is not None and self.ema_halflife_kimg is None:
            raise ValueError("ema_rampup needs ema_halflife_kimg (it caps that half-life)")
        return self


class StackSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = Field(0, ge=0, le=MAX_INT)
    backbone: ComponentSpec
    loss: ComponentSpec = ComponentSpec(name="ns")
    methods: list[ComponentSpec] = Field(default_factory=list, max_length=32)
    data: ComponentSpec = ComponentSpec(name="ring")
    train: TrainSpec = Field(default_factory=TrainSpec)

    @field_validator("methods")
    @classmethod
    def _no_duplicates(cls, methods: list[ComponentSpec]) -> list[ComponentSpec]:
        names = [m.name for m in methods]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"method(s) {dup} appear more than once")
        return methods

    def to_dict(self) -> dict[str, Any]:
        def comp(c: ComponentSpec) -> dict[str, Any]:
            return {"name": c.name, **c.options}

        return {"seed": self.seed, "backbone": comp(self.backbone), "loss": comp(self.loss),
                "methods": [comp(m) for m in self.methods], "data": comp(self.data),
                "train": self.train.model_dump(mode="json")}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def shorthand(self) -> str:
        parts = [f"backbone={self.backbone.name}", f"loss={self.loss.name}"]
        parts += [m.name for m in self.methods]
        return " + ".join(parts) + f"  (data={self.data.name})"


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def parse_spec(source: str | Path | dict[str, Any] | StackSpec,
               overrides: list[str] | None = None) -> StackSpec:
    """Read a spec from a TOML path, a dict or a StackSpec, apply overrides, check its shape.

    Component names and options are checked later, against the registry, by ``resolve_spec``."""

    if isinstance(source, StackSpec):
        if not overrides:
            return source
        raw = source.to_dict()
    elif isinstance(source, dict):
        check_shape(source, where="")
        raw = copy.deepcopy(source)
    elif isinstance(source, (str, Path)):
        raw = load_toml(source)
    else:
        raise SpecError(f"a spec is a TOML path, a dict or a StackSpec, not "
                        f"{type(source).__name__}", where="spec", fix="pass one of those.")
    overrides = list(overrides or [])
    first = [o for o in overrides if o.partition("=")[0].strip() == "stack"]
    raw = apply_overrides(raw, first)  # a new shorthand first, then options over it
    if first and isinstance(raw.get("stack"), str) and isinstance(raw.get("methods"), list):
        # a new shorthand replaces the method list: option tables of the methods it no longer
        # names belong to the old stack (a sweep cell that swaps acl for aae), not a typo
        named = {m["name"] for m in parse_shorthand(raw["stack"])["methods"]}
        raw["methods"] = [m for m in raw["methods"] if not isinstance(m, dict)
                          or "name" not in m or m["name"] in named]
    if "stack" in raw:
        raw = _merge_shorthand(raw)
    raw = apply_overrides(raw, [o for o in overrides if o not in first])
    if "backbone" not in raw:
        raise SpecError("the stack names no backbone", where="backbone",
                        fix='add stack = "backbone=NAME + ..." or a [backbone] table with a name.')
    for key in ("backbone", "loss", "data"):
        if isinstance(raw.get(key), str):
            raw[key] = {"name": raw[key]}
    methods = raw.get("methods", [])
    if not isinstance(methods, list):
        raise SpecError(f"expected a list of method tables, got {trim(repr(methods), 60)}",
                        where="methods", fix="write [[methods]] tables or name methods in stack.")
    raw["methods"] = [{"name": m} if isinstance(m, str) else m for m in methods]
    try:
        return StackSpec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _path(err["loc"])
            if err["type"] == "extra_forbidden":
                section = StackSpec if len(err["loc"]) == 1 else TrainSpec
                hint = suggest(str(err["loc"][-1]), section.model_fields)
                problems.append(f"{where}: unknown key" + (f" ({hint})" if hint else ""))
            else:
                problems.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        raise SpecError(trim("; ".join(problems), 1500),
                        fix="see docs/stacks.md for every section and key.") from None
