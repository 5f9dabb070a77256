"""The shape of one ``registry.toml`` section, checked before any of it is used: a third-party
file with a wrong type makes its plugin a reported broken plugin, not a crash of every command."""

from __future__ import annotations

from typing import Any


def metadata_problem(meta: Any, *, alias: bool) -> str:
    """What is wrong with one registry.toml section, or ``""``."""

    if not isinstance(meta, dict):
        return "is not a table"
    for key in ("title", "paper", "summary", "kind", "plugin"):
        if key in meta and not isinstance(meta[key], str):
            return f"{key} must be a string"
    for key in ("needs", "provides", "conflicts") + (("expands",) if alias else ()):
        if key in meta and not (isinstance(meta[key], list)
                                and all(isinstance(v, str) for v in meta[key])):
            return f"{key} must be a list of names"
    for key in ("cost", "defaults"):
        if key in meta and not isinstance(meta[key], dict):
            return f"{key} must be a table"
    return ""
