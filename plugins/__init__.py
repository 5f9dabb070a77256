"""gantk's first-party plugins. They register through the same ``gantk`` entry-point group that a
third-party package uses (see pyproject.toml); this package module contributes the method registry
metadata: the repository's top-level ``registry.toml``, the one source. ``plugins/registry.toml`` is
a symbolic link to it, so the build copies its content into the wheel as package data
(``gantk_plugins/registry.toml``) and an editable install reads the top-level file itself."""

from __future__ import annotations

from pathlib import Path

from gantk import hookimpl


def registry_path() -> Path:
    """The registry file this package ships (in a checkout: the link to the top-level file)."""
    return Path(__file__).with_name("registry.toml")


@hookimpl
def gantk_registry_files() -> list[str]:
    path = registry_path()
    return [str(path)] if path.exists() else []
