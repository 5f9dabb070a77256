"""gantk's first-party plugins. They register through the same ``gantk`` entry-point group that a
third-party package uses (see pyproject.toml); this package module contributes the method registry
metadata (registry.toml)."""

from __future__ import annotations

from pathlib import Path

from gantk.hookspecs import hookimpl


def registry_path() -> Path:
    return Path(__file__).with_name("registry.toml")


@hookimpl
def gantk_registry_files() -> list[str]:
    path = registry_path()
    return [str(path)] if path.exists() else []
