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
import math
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from .errors import SpecError, suggest
from .safeio import trim


#: limits that keep any spec from reaching a traceback or a memory blow-up (docs/reliability.md)
MAX_INT = 2**63 - 1          # every integer in a spec fits in 64 bits
MAX_DEPTH = 16               # tables and arrays nested deeper than this are refused
MAX_SPEC_BYTES = 1 << 20     # a stack file larger than 1 MiB is refused
MAX_STEPS = 10**9
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


# ---------------------------------------------------------------------------- shorthand

_TOKEN = re.compile(r"\s*(?P<tok>[^\s+]+(?:\+(?=\s*(?:\+|$)))?)\s*(?:\+|$)")


def parse_shorthand(text: str) -> dict[str, Any]:
    """``"backbone=dcgan + clr + qua+"`` -> ``{"backbone": {...}, "methods": [...]}``.

    A trailing ``+`` belongs to a name when it is followed by another ``+`` or the end
    (``qua+ + clr``)."""

    out: dict[str, Any] = {"methods": []}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise SpecError(f"cannot read the shorthand near {text[pos:]!r}", where="stack",
                            fix='write it as "backbone=NAME + method + method", e.g. '
                                '"backbone=dcgan + clr + advlat_z".')
        tok, pos = m.group("tok"), m.end()
        if "=" in tok:
            key, _, value = tok.partition("=")
            if key not in ("backbone", "loss", "data"):
                hint = suggest(key, ["backbone", "loss", "data"])
                raise SpecError(f"unknown shorthand key {key!r}" + (f"; {hint}" if hint else ""),
                                where="stack", fix="only backbone=, loss= and data= take a value; "
                                                   "methods are bare names.")
            if not value:
                raise SpecError(f"{key}= has no name", where="stack", fix=f"write {key}=NAME.")
            out[key] = {"name": value}
        else:
            out["methods"].append({"name": tok})
    if "backbone" not in out:
        raise SpecError("the shorthand names no backbone", where="stack",
                        fix='start it with "backbone=NAME", e.g. "backbone=mlp + advlat_z".')
    return out


def _merge_shorthand(raw: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    short = raw.pop("stack")
    if not isinstance(short, str):
        raise SpecError(f"expected a string, got {type(short).__name__}", where="stack",
                        fix='write stack = "backbone=NAME + method".')
    parsed = parse_shorthand(short)
    for key in ("backbone", "loss", "data"):
        if key not in parsed:
            continue
        table = raw.get(key, {})
        if not isinstance(table, dict):
            raise SpecError(f"expected a table, got {table!r}", where=key, fix=f"write [{key}].")
        if table.get("name", parsed[key]["name"]) != parsed[key]["name"]:
            raise SpecError(f"the table names {table['name']!r} but the shorthand says "
                            f"{parsed[key]['name']!r}", where=f"{key}.name",
                            fix="name it once, or make both agree.")
        raw[key] = {**table, "name": parsed[key]["name"]}
    given = raw.get("methods", [])
    if not isinstance(given, list):
        raise SpecError(f"expected [[methods]] tables, got {trim(repr(given), 60)}", where="methods",
                        fix="write [[methods]] tables with a name and options.")
    names = [m["name"] for m in parsed["methods"]]
    # With a shorthand, methods[i] is the i-th method of the shorthand (as in --set methods[i] and
    # every later message), whatever the order of the [[methods]] tables that give options; a
    # table that matches no method has no such index and is named by its own position.
    options: dict[str, dict[str, Any]] = {}
    for i, m in enumerate(given, start=1):
        table = f"[[methods]] table number {i}"
        if not isinstance(m, dict) or "name" not in m:
            raise SpecError(f"{table} has no name", where="methods",
                            fix='add name = "..." naming a method of the stack.')
        if m["name"] in options:
            raise SpecError(f"two [[methods]] tables give options for {m['name']!r}",
                            where=f"methods[{names.index(m['name'])}]",
                            fix="merge them into one table.")
        if m["name"] not in names:
            close = [n for n in names if suggest(str(m["name"]), [n])]
            raise SpecError(f"{table} gives options for {m['name']!r}, which the shorthand does "
                            "not name" + (f"; the shorthand names {close[0]!r}, which is close: is "
                                          "one of the two misspelt?" if close else ""),
                            where="methods",
                            fix=f"make the table's name and the shorthand agree ({short!r}), or "
                                "remove the table.")
        options[m["name"]] = m
    raw["methods"] = [options.get(n, {"name": n}) for n in names]
    return raw


# ---------------------------------------------------------------------------- overrides

def _parse_value(text: str) -> Any:
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word is a string
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise SpecError(f"cannot read the value {trim(text, 60)!r} ({trim(exc, 120)})",
                        where="--set", fix="use a value of a sensible size.") from None
    except RecursionError:
        raise SpecError(f"the value {trim(text, 60)!r} is nested too deeply", where="--set",
                        fix=f"nest arrays and tables at most {MAX_DEPTH} deep.") from None
    check_shape(value, where="--set")
    return value


def check_shape(value: Any, *, where: str, depth: int = 0) -> None:
    """Refuse what no spec field can need: nesting beyond MAX_DEPTH, integers beyond 64 bits,
    keys that are not strings, values that are not TOML data."""
    if depth > MAX_DEPTH:
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep", where=where,
                        fix="flatten the value; no gantk option nests that deep.")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{value} is not a finite number", where=where,
                        fix="use a finite value; every gantk option is a finite number.")
    if isinstance(value, bool) or value is None or isinstance(value, (float, str)):
        return
    if isinstance(value, int):
        if not -MAX_INT - 1 <= value <= MAX_INT:
            raise SpecError(f"the integer {trim(value, 40)} does not fit in 64 bits", where=where,
                            fix="use a value of a sensible size.")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise SpecError(f"the key {trim(repr(k), 40)} is not a string", where=where,
                                fix="use string keys.")
            check_shape(v, where=f"{where}.{k}" if where else k, depth=depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_shape(v, where=f"{where}[{i}]", depth=depth + 1)
        return
    if type(value).__module__ == "datetime":  # TOML dates: valid data, refused by the fields
        return
    raise SpecError(f"a value of type {type(value).__name__} is not spec data", where=where,
                    fix="use TOML values (strings, numbers, booleans, arrays, tables).")


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """``train.steps=500``, ``backbone.resolution=16``, ``methods.clr.lambda_latent=1``,
    ``methods[0].lambda_latent=1``, ``stack="backbone=mlp + msgan"``."""

    raw = copy.deepcopy(raw)
    for item in overrides or []:
        if not isinstance(item, str):
            raise SpecError(f"an override must be a string, got {type(item).__name__}",
                            where="--set", fix="write section.option=value.")
        key, sep, value = item.partition("=")
        key = key.strip()
        where = f"--set {trim(item, 80)}"
        if not sep or not _KEY.fullmatch(key):
            raise SpecError(f"cannot read the override {trim(item, 80)!r}", where="--set",
                            fix="write --set section.option=value with a dotted key of names "
                                "(and [N] for a methods entry), e.g. --set train.steps=500.")
        val = _parse_value(value.strip())
        if key == "stack" or key == "seed":
            raw[key] = val
            continue
        parts = re.split(r"\.|\[(\d+)\]\.?", key)
        parts = [p for p in parts if p]
        if parts[0] == "methods" and len(parts) >= 3:
            ident = parts[1]
            methods = raw.setdefault("methods", [])
            if not isinstance(methods, list) or not all(isinstance(m, dict) for m in methods):
                raise SpecError("methods is not a list of tables", where=where,
                                fix="write [[methods]] tables, or override the shorthand instead.")
            if ident.isdigit():
                idx = int(ident)
                if idx >= len(methods):
                    raise SpecError(f"there is no methods[{idx}]", where=where,
                                    fix=f"the stack has {len(methods)} method table(s).")
                target = methods[idx]
            else:
                target = next((m for m in methods if m.get("name") == ident), None)
                if target is None:
                    if "stack" in raw:
                        target = {"name": ident}
                        methods.append(target)
                    else:
                        raise SpecError(f"the stack has no method {ident!r}", where=where,
                                        fix="add it to the stack first.")
            node = target
            parts = parts[2:]
        else:
            node = raw
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise SpecError(f"{p!r} is not a table", where=where,
                                fix="override a leaf option.")
        node[parts[-1]] = val
    return raw


_KEY = re.compile(r"[A-Za-z0-9_+\-]+(\[[0-9]{1,4}\])?(\.[A-Za-z0-9_+\-]+(\[[0-9]{1,4}\])?)*")


# ---------------------------------------------------------------------------- loading

def load_toml(path: str | Path) -> dict[str, Any]:
    from .safeio import RunDirError, read_text, regular_file

    path = Path(path)
    if not path.exists():
        raise SpecError("file not found", where=trim(path, 200),
                        fix="check the path; example stacks live in examples/stacks/.")
    try:
        if regular_file(path, what="stack file").stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(f"the stack file is larger than {MAX_SPEC_BYTES} bytes",
                            where=str(path), fix="a stack file is a few lines of TOML; check the path.")
        return parse_toml_text(read_text(path, what="stack file"), where=str(path))
    except RunDirError as exc:
        raise SpecError(exc.message, where=exc.where, fix=exc.fix) from None


def parse_toml_text(text: str, *, where: str = "stack") -> dict[str, Any]:
    """TOML text -> dict, with malformed, too deep or too large documents as SpecError."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"malformed TOML: {trim(exc, 300)}", where=where,
                        fix="correct the syntax at that line (strings need quotes, tables "
                            "[name], lists of tables [[methods]]).") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise SpecError(f"a value cannot be read ({trim(exc, 200)})", where=where,
                        fix="use values of a sensible size.") from None
    except RecursionError:
        raise SpecError("arrays or tables are nested too deeply", where=where,
                        fix=f"nest at most {MAX_DEPTH} levels; no gantk option needs more.") from None
    check_shape(raw, where="")
    return raw


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
