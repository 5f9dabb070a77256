"""Stack files as text: the shorthand (``"backbone=dcgan + clr"``), ``--set`` overrides, and TOML
read with limits, so that no file or flag reaches a traceback or a memory blow-up. The result is
plain data; :func:`gantk.stack.spec.parse_spec` validates it into a :class:`StackSpec`.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from ..base.errors import SpecError, suggest
from ..base.safeio import RunDirError, read_text, regular_file, trim

#: limits that keep any spec from reaching a traceback or a memory blow-up (docs/reliability.md)
MAX_INT = 2**63 - 1          # every integer in a spec fits in 64 bits
MAX_DEPTH = 16               # tables and arrays nested deeper than this are refused
MAX_SPEC_BYTES = 1 << 20     # a stack file larger than 1 MiB is refused


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

def parse_value(text: str) -> Any:
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
        val = parse_value(value.strip())
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
