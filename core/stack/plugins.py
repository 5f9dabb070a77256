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
from ..base.errors import GantkError, PluginError, suggest
from ..base.safeio import trim
from .registry import Registrar, Registry

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
        seen: dict[str, str] = {}
        for ep in sorted(md.entry_points(group=GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else ""
            version = ep.dist.version if ep.dist else ""
            if ep.name in self.disabled:
                continue
            if ep.name in seen or self.pm.has_plugin(ep.name):
                self._mark_broken(ep.name, dist, version, PluginError(
                    f"a second plugin with the entry-point name {ep.name!r} ({ep.value}); the "
                    f"first ({seen.get(ep.name, 'already registered')}) is used, this one is "
                    "skipped"))
                continue
            seen[ep.name] = ep.value
            try:
                plugin = ep.load()  # the plugin's import: whatever it raises is its own failure
                self.pm.register(plugin, name=ep.name)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - SystemExit at import included:
                # a broken plugin must not take the others (or gantk) down
                self._mark_broken(ep.name, dist, version, exc)
                continue
            unknown = self._unknown_hooks(ep.name)
            if unknown:
                self.pm.unregister(name=ep.name)
                self._mark_broken(ep.name, dist, version, PluginError(
                    f"it implements {', '.join(unknown)}, which is no gantk hook ("
                    + "; ".join(suggest(u, _HOOKS) or "no close match" for u in unknown) + ")"))
                continue
            self.origins[ep.name] = (dist, version)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc), where=f"plugin {exc.plugin!r}",
                              fix="rename the misspelt hook to one in gantk.hookspecs.") from None

    def _unknown_hooks(self, name: str) -> list[str]:
        """The hooks plugin ``name`` implements that gantk does not declare (misspelt ones)."""
        plugin = self.pm.get_plugin(name)
        found = []
        for caller in self.pm.get_hookcallers(plugin) or []:
            if caller.spec is None and any(i.plugin is plugin and not i.optionalhook
                                           for i in caller.get_hookimpls()):
                found.append(caller.name)
        return found

    def _mark_broken(self, name: str, dist: str, version: str, exc: BaseException) -> None:
        detail = "".join(traceback.format_exception(exc))
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, SystemExit):
            text = f"SystemExit({trim(exc.code, 100)!r}) while importing (the plugin called exit)"
        broken = BrokenPlugin(name, dist, version, trim(text, 600), trim(detail, 20_000))
        self.broken.append(broken)
        if self.strict:
            raise PluginError(f"plugin {name!r} ({dist} {version}) failed to load: {broken.error}",
                              where=f"entry point {GROUP}:{name}",
                              fix="fix or uninstall the plugin, or disable it with "
                                  f"GANTK_DISABLE_PLUGINS={name}.")
        _warn(f"plugin {name!r} ({(dist + ' ' + version).strip() or 'no package'}) is broken "
              f"and was skipped: {trim(broken.error, 300)} (`gantk list-plugins` lists it; "
              f"GANTK_DISABLE_PLUGINS={name} silences this; GANTK_STRICT=1 makes it an error)")

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
        """The hooks, called so that a plugin's crash in one is one paragraph naming the plugin
        (a :class:`PluginError`), never an "unexpected" error."""
        return _GuardedHooks(self)

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = self._build_registry()
        return self._registry

    def _build_registry(self) -> Registry:
        registry = Registry()
        skip: set[str] = set()
        for impl in self.pm.hook.gantk_registry_files.get_hookimpls():
            try:
                for path in impl.function() or ():
                    registry.load_metadata(path, plugin=impl.plugin_name)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # a broken registry.toml: that plugin is skipped
                registry.drop_metadata(impl.plugin_name)
                skip.add(impl.plugin_name)
                self._mark_broken(impl.plugin_name, *self._origin(impl.plugin_name), exc)
        for impl in self.pm.hook.gantk_register.get_hookimpls():
            if impl.plugin_name in skip:
                continue
            dist, version = self._origin(impl.plugin_name)
            register = Registrar(registry, plugin=impl.plugin_name, distribution=dist,
                                 version=version)
            snapshot = (dict(registry.entries), dict(registry.aliases))
            try:
                impl.function(**({"register": register} if impl.argnames else {}))
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # registration failed (a bad keyword, a name another
                # plugin took, a crash): report, roll back, keep the rest
                registry.entries, registry.aliases = snapshot
                skip.add(impl.plugin_name)
                self._mark_broken(impl.plugin_name, dist, version, exc)
        for plugin, exc in registry.apply_metadata():  # a section that does not fit its entry
            registry.drop_plugin(plugin)
            self._mark_broken(plugin, *self._origin(plugin), exc)
        registry.broken = {b.name: b.error for b in self.broken}
        if self.strict:
            missing = [n for n, meta in registry.metadata.items() if n not in registry.entries
                       and meta.get("plugin") not in self.disabled]
            if missing:
                raise PluginError(f"registry.toml describes {missing} but no installed plugin "
                                  "registers them", where="registry.toml",
                                  fix="install the plugin or remove the entries.")
        return registry

    def _origin(self, plugin: str) -> tuple[str, str]:
        return self.origins.get(plugin, (plugin, ""))

    def describe(self) -> list[dict[str, Any]]:
        rows = self.registry.describe()
        for b in self.broken:
            rows.append({"name": b.name, "kind": "plugin", "plugin": b.distribution or b.name,
                         "entry_point": b.name, "version": b.version, "title": "", "paper": "",
                         "summary": b.error, "needs": [], "conflicts": [], "cost": {},
                         "status": "broken", "error": b.error})
        return rows


_HOOKS = [n for n in dir(hookspecs) if n.startswith("gantk_")]


def _warn(text: str) -> None:
    import sys

    sys.stderr.write(f"warning: {text}\n")


class _GuardedHooks:
    """``manager.hook``: each hook call turns a plugin's unexpected exception into a
    PluginError that names the plugin (found from the traceback) and the hook."""

    def __init__(self, manager: PluginManager) -> None:
        self._manager = manager

    def __getattr__(self, name: str) -> Any:
        return _GuardedCaller(self._manager, getattr(self._manager.pm.hook, name), name)


class _GuardedCaller:
    def __init__(self, manager: PluginManager, caller: Any, name: str) -> None:
        self._manager, self._caller, self._name = manager, caller, name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._caller, attr)

    def __call__(self, **kwargs: Any) -> Any:
        try:
            return self._caller(**kwargs)
        except GantkError:
            raise  # a plugin's own paragraph (or gantk's, raised through a hook)
        except Exception as exc:
            plugin = culprit(exc, self._caller)
            dist, version = self._manager._origin(plugin) if plugin else ("", "")
            named = f"the plugin {plugin!r} ({(dist + ' ' + version).strip()})" if plugin \
                else "a plugin"
            raise PluginError(
                f"{named} failed in its {self._name} hook: {type(exc).__name__}: {trim(exc, 300)}",
                where=f"plugin {plugin!r}" if plugin else f"hook {self._name}",
                fix="update or fix the plugin, or run without it (gantk -p no:"
                    f"{plugin or 'NAME'} ..., or GANTK_DISABLE_PLUGINS={plugin or 'NAME'}); "
                    "--debug shows the traceback.") from exc


def culprit(exc: BaseException, caller: Any) -> str | None:
    """The plugin whose hook implementation raised ``exc`` (the innermost one on the traceback)."""

    codes = {}
    for impl in caller.get_hookimpls():
        code = getattr(getattr(impl.function, "__func__", impl.function), "__code__", None)
        if code is not None:
            codes[code] = impl.plugin_name
    found, tb = None, exc.__traceback__
    while tb is not None:
        found = codes.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    return found


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
