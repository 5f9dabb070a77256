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
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import SpecError, suggest


class ComponentSpec(BaseModel):
    """A named component with its options (the options are validated by the component's Params)."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TrainSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(2000, ge=0, description="total generator updates")
    batch_size: int = Field(64, ge=1)
    n_critic: int = Field(1, ge=1, description="D updates per G update")
    lr_g: float = Field(2e-4, gt=0)
    lr_d: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    weight_decay: float = Field(0.0, ge=0)
    ema_decay: float = Field(0.0, ge=0, lt=1, description="EMA of G for sampling; 0 turns it off")
    log_every: int = Field(50, ge=1)
    sample_every: int = Field(500, ge=0, description="sample grid/plot every N steps; 0: only at the end")
    ckpt_every: int = Field(500, ge=0, description="checkpoint every N steps; 0: only at the end")
    keep_checkpoints: int = Field(3, ge=1)
    eval_every: int = Field(0, ge=0, description="evaluate every N steps; 0: never during training")
    eval_metrics: list[str] = Field(default_factory=list)
    eval_n: int = Field(2000, ge=10)
    best_metric: str | None = Field(None, description="keep the checkpoint that is best by this metric")
    num_samples: int = Field(64, ge=1, description="samples in each grid (points for 2-D data: 2000)")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', 'cuda:1', ...")


class StackSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    backbone: ComponentSpec
    loss: ComponentSpec = ComponentSpec(name="ns")
    methods: list[ComponentSpec] = Field(default_factory=list)
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
    names = [m["name"] for m in parsed["methods"]]
    options: dict[str, dict[str, Any]] = {}
    for i, m in enumerate(given):
        if not isinstance(m, dict) or "name" not in m:
            raise SpecError("each [[methods]] entry needs a name", where=f"methods[{i}]",
                            fix='add name = "...".')
        if m["name"] not in names:
            raise SpecError(f"[[methods]] gives options for {m['name']!r}, which the shorthand does "
                            "not name", where=f"methods[{i}].name",
                            fix=f"add it to stack = \"...\" or remove the table ({short!r}).")
        options[m["name"]] = m
    raw["methods"] = [options.get(n, {"name": n}) for n in names]
    return raw


# ---------------------------------------------------------------------------- overrides

def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word is a string


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """``train.steps=500``, ``backbone.resolution=16``, ``methods.clr.lambda_latent=1``,
    ``methods[0].lambda_latent=1``, ``stack="backbone=mlp + msgan"``."""

    raw = copy.deepcopy(raw)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"cannot read the override {item!r}", where="--set",
                            fix="write --set section.option=value, e.g. --set train.steps=500.")
        val = _parse_value(value.strip())
        if key == "stack" or key == "seed":
            raw[key] = val
            continue
        parts = re.split(r"\.|\[(\d+)\]\.?", key)
        parts = [p for p in parts if p]
        if parts[0] == "methods" and len(parts) >= 3:
            ident = parts[1]
            methods = raw.setdefault("methods", [])
            if ident.isdigit():
                idx = int(ident)
                if idx >= len(methods):
                    raise SpecError(f"there is no methods[{idx}]", where=f"--set {item}",
                                    fix=f"the stack has {len(methods)} method table(s).")
                target = methods[idx]
            else:
                target = next((m for m in methods if m.get("name") == ident), None)
                if target is None:
                    if "stack" in raw:
                        target = {"name": ident}
                        methods.append(target)
                    else:
                        raise SpecError(f"the stack has no method {ident!r}", where=f"--set {item}",
                                        fix="add it to the stack first.")
            node = target
            parts = parts[2:]
        else:
            node = raw
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise SpecError(f"{p!r} is not a table", where=f"--set {item}",
                                fix="override a leaf option.")
        node[parts[-1]] = val
    return raw


# ---------------------------------------------------------------------------- loading

def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise SpecError("file not found", where=str(path),
                        fix="check the path; example stacks live in examples/stacks/.")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"malformed TOML: {exc}", where=str(path),
                        fix="correct the syntax at that line (strings need quotes, tables "
                            "[name], lists of tables [[methods]]).") from None


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
        raw = copy.deepcopy(source)
    else:
        raw = load_toml(source)
    overrides = list(overrides or [])
    first = [o for o in overrides if o.partition("=")[0].strip() == "stack"]
    raw = apply_overrides(raw, first)  # a new shorthand first, then options over it
    if "stack" in raw:
        raw = _merge_shorthand(raw)
    raw = apply_overrides(raw, [o for o in overrides if o not in first])
    if "backbone" not in raw:
        raise SpecError("the stack names no backbone", where="backbone",
                        fix='add stack = "backbone=NAME + ..." or a [backbone] table with a name.')
    for key in ("backbone", "loss", "data"):
        if isinstance(raw.get(key), str):
            raw[key] = {"name": raw[key]}
    raw["methods"] = [{"name": m} if isinstance(m, str) else m for m in raw.get("methods", [])]
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
                problems.append(f"{where}: {err['msg']}")
        raise SpecError("; ".join(problems),
                        fix="see docs/stacks.md for every section and key.") from None
