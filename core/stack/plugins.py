"""The plugin manager: entry points loaded one by one, broken plugins reported, not fatal.

* ``GANTK_DISABLE_PLUGINS=a,b`` (or ``gantk -p no:a``) blocks plugins by entry-point name.
* ``GANTK_STRICT=1`` (or ``gantk --strict``) turns a broken plugin or a registry.toml entry that no
  plugin provides into an error, for CI.
* Tests register a plugin object for one block with :func:`temporary_plugin`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from ..base.errors import PluginError
from .registry import Registrar, RegistrationError, Registry

GROUP = "gantk"


@dataclass
class BrokenPlugin:
    name: str
    distribution: str
    version: str
    error: str
    detail: str


class PluginManager:
    def __init__(self, *, disabled: tuple[str, ...] | list[str] = (), strict: bool = False,
                 load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager("gantk")
        self.pm.add_hookspecs(hookspecs)
        self.disabled = set(disabled)
        self.strict = strict
        self.broken: list[BrokenPlugin] = []
        self.origins: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
        self._registry: Registry | None = None
        if load_entry_points:
            self._load_entry_points()

    # ------------------------------------------------------------------ loading
    def _load_entry_points(self) -> None:
        for ep in sorted(md.entry_points(group=GROUP), key=lambda e: e.name):
            if ep.name in self.disabled or self.pm.has_plugin(ep.name):
                continue
            dist = ep.dist.name if ep.dist else ""
            version = ep.dist.version if ep.dist else ""
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
            except Exception as exc:  # a broken plugin must not take the others down
                self._mark_broken(ep.name, dist, version, exc)
                continue
            self.origins[ep.name] = (dist, version)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc), where=f"plugin {exc.plugin!r}",
                              fix="rename the misspelt hook to one in gantk.hookspecs.") from None

    def _mark_broken(self, name: str, dist: str, version: str, exc: BaseException) -> None:
        detail = "".join(traceback.format_exception(exc))
        broken = BrokenPlugin(name, dist, version, f"{type(exc).__name__}: {exc}", detail)
        self.broken.append(broken)
        if self.strict:
            raise PluginError(f"plugin {name!r} ({dist} {version}) failed to load: {broken.error}",
                              where=f"entry point {GROUP}:{name}",
                              fix="fix or uninstall the plugin, or disable it with "
                                  f"GANTK_DISABLE_PLUGINS={name}.")

    def register(self, plugin: Any, name: str | None = None, *, distribution: str = "",
                 version: str = "") -> str:
        name = self.pm.register(plugin, name=name)
        self.origins[name] = (distribution or name, version)
        self._registry = None
        return name

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.origins.pop(name, None)
        self._registry = None

    # ------------------------------------------------------------------ registry
    @property
    def hook(self) -> Any:
        return self.pm.hook

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = self._build_registry()
        return self._registry

    def _build_registry(self) -> Registry:
        registry = Registry()
        for impl in self.pm.hook.gantk_registry_files.get_hookimpls():
            for path in impl.function() or ():
                registry.load_metadata(path)
        for impl in self.pm.hook.gantk_register.get_hookimpls():
            dist, version = self.origins.get(impl.plugin_name, (impl.plugin_name, ""))
            register = Registrar(registry, plugin=impl.plugin_name, distribution=dist,
                                 version=version)
            snapshot = (dict(registry.entries), dict(registry.aliases))
            try:
                impl.function(**({"register": register} if impl.argnames else {}))
            except PluginError as exc:
                if not isinstance(exc, RegistrationError):
                    raise
                registry.entries, registry.aliases = snapshot
                self._mark_broken(impl.plugin_name, dist, version, exc)
            except Exception as exc:  # registration failed: report, roll back, keep the rest
                registry.entries, registry.aliases = snapshot
                self._mark_broken(impl.plugin_name, dist, version, exc)
        registry.apply_metadata()
        registry.broken = {b.name: b.error for b in self.broken}
        if self.strict:
            missing = [n for n, meta in registry.metadata.items() if n not in registry.entries
                       and meta.get("plugin") not in self.disabled]
            if missing:
                raise PluginError(f"registry.toml describes {missing} but no installed plugin "
                                  "registers them", where="registry.toml",
                                  fix="install the plugin or remove the entries.")
        return registry

    def describe(self) -> list[dict[str, Any]]:
        rows = self.registry.describe()
        for b in self.broken:
            rows.append({"name": b.name, "kind": "plugin", "plugin": b.distribution or b.name,
                         "entry_point": b.name, "version": b.version, "title": "", "paper": "",
                         "summary": b.error, "needs": [], "conflicts": [], "cost": {},
                         "status": "broken", "error": b.error})
        return rows


_default: PluginManager | None = None


def env_list(name: str) -> list[str]:
    return [s.strip() for s in os.environ.get(name, "").split(",") if s.strip()]


def get_plugin_manager(*, refresh: bool = False, disabled: list[str] | None = None,
                       strict: bool | None = None) -> PluginManager:
    """The process-wide manager (built on first use from entry points and the environment)."""

    global _default
    if _default is None or refresh or disabled is not None or strict is not None:
        _default = PluginManager(
            disabled=list(disabled if disabled is not None else env_list("GANTK_DISABLE_PLUGINS")),
            strict=strict if strict is not None else os.environ.get("GANTK_STRICT", "") == "1",
        )
    return _default


def get_registry() -> Registry:
    return get_plugin_manager().registry


@contextlib.contextmanager
def temporary_plugin(plugin: Any, name: str | None = None) -> Iterator[PluginManager]:
    """Register ``plugin`` on the default manager for the duration of a ``with`` block."""

    pm = get_plugin_manager()
    registered = pm.register(plugin, name=name)
    try:
        yield pm
    finally:
        pm.unregister(registered)
