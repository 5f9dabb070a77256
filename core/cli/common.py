"""What the commands share: the plugin manager from ``-p``/``--strict``, count checks and
``NAME.option=value`` flags. Public, so that a command module of any layer above the library
(``eval``, ``sweep``, a plugin's own) builds on the same rules as ``gantk train``."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from ..base.errors import SpecError

console = Console()
err_console = Console(stderr=True)


def plugin_manager(args: argparse.Namespace):
    from ..stack.plugins import env_list, get_plugin_manager

    disabled = env_list("GANTK_DISABLE_PLUGINS")
    for item in plugin_opts(args):
        if not item.startswith("no:"):
            raise SpecError(f"cannot read -p {item!r}", where="-p",
                            fix="write -p no:NAME to disable the plugin NAME.")
        disabled.append(item[3:])
    return get_plugin_manager(disabled=disabled, strict=getattr(args, "strict", False) or None)


def plugin_opts(args: argparse.Namespace) -> list[str]:
    """Every ``-p`` value, given before or after the subcommand."""
    return [*(getattr(args, "plugin_opts", None) or []),
            *(getattr(args, "plugin_opts_after", None) or [])]


def check_count(value: int, flag: str, high: int) -> int:
    """A count flag (``--n``, ``--pairs``...) within 1..high, or a clear refusal."""
    if not 1 <= value <= high:
        raise SpecError(f"{value} is out of range", where=flag, fix=f"give 1 to {high:,}.")
    return value


def parse_named_options(items: list[str] | None, *, flag: str,
                        example: str) -> dict[str, dict[str, Any]]:
    """``["advlat_z.steps=50", ...]`` -> ``{"advlat_z": {"steps": 50}}`` (values read as TOML)."""
    from ..stack.spec import parse_value

    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        name, dot, option = key.strip().partition(".")
        if not sep or not dot or not option:
            raise SpecError(f"cannot read {item!r}", where=flag,
                            fix=f"write {flag} NAME.option=value, e.g. {example}.")
        out.setdefault(name, {})[option] = parse_value(value.strip())
    return out


def parse_with(args: argparse.Namespace) -> list[dict[str, Any]]:
    options = parse_named_options(args.with_set, flag="--with-set", example="advlat_z.steps=50")
    names = list(args.with_ or [])
    for name in options:
        if name not in names:
            raise SpecError(f"{name!r} is not given with --with", where="--with-set",
                            fix=f"add --with {name}.")
    return [{"name": n, **options.get(n, {})} for n in names]
