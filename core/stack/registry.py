"""The component registry: what plugins register, merged with TOML metadata (``registry.toml``).

Kinds: ``backbone``, ``loss``, ``latent_transform``, ``regularizer``, ``method``, ``dataset``,
``metric``, ``logger``. A *method* is a named bundle whose factory returns one or more components; a
latent transform or regularizer registered on its own can be used in a stack the same way.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..train.ema import EmaDefault
from ..base.errors import PluginError, SpecError, some, suggest
from ..base.safeio import trim
from .regmeta import metadata_problem as _metadata_problem

KINDS = ("backbone", "loss", "latent_transform", "regularizer", "method", "dataset", "metric",
         "logger")
STACKABLE = ("latent_transform", "regularizer", "method")


class NoParams(BaseModel):
    """A component without options."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Entry:
    """One registered name."""

    name: str
    kind: str
    factory: Callable[..., Any]
    params: type[BaseModel] = NoParams
    plugin: str = ""
    distribution: str = ""
    version: str = ""
    summary: str = ""
    title: str = ""
    paper: str = ""
    needs: frozenset[str] = frozenset()
    provides: frozenset[str] = frozenset()  # what a method adds to the stack: generator_objective
    conflicts: frozenset[str] = frozenset()
    cost: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    check: Callable[..., None] | None = None  # check(params, ctx) raises IncompatibleStackError
    info: Callable[..., Any] | None = None  # datasets: info(params) -> DataInfo
    ema: EmaDefault | None = None  # backbones: the EMA of G the family's original uses
    extra: dict[str, Any] = field(default_factory=dict)

    def make_params(self, options: dict[str, Any], *, where: str) -> BaseModel:
        """Validate user options over the registry defaults; errors name the TOML path."""

        merged = {**self.defaults, **options}
        try:
            return self.params.model_validate(merged)
        except ValidationError as exc:
            raise params_error(exc, where=where, entry=self) from None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "plugin": self.distribution or self.plugin,
            "entry_point": self.plugin,
            "version": self.version,
            "title": self.title,
            "paper": self.paper,
            "summary": self.summary,
            "needs": sorted(self.needs),
            "provides": sorted(self.provides),
            "conflicts": sorted(self.conflicts),
            "cost": self.cost,
            **({"ema": asdict(self.ema)} if self.ema is not None else {}),
            "status": "ok",
        }


@dataclass
class Alias:
    name: str
    expands: tuple[str, ...]
    summary: str = ""
    plugin: str = ""
    distribution: str = ""
    version: str = ""
    title: str = ""
    paper: str = ""


def params_error(exc: ValidationError, *, where: str, entry: Entry) -> SpecError:
    """One paragraph from a pydantic error, with dotted paths and close-match suggestions."""

    fields = list(entry.params.model_fields)
    problems, unknown = [], []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        path = f"{where}.{loc}" if loc else where
        if err["type"] == "extra_forbidden":
            hint = suggest(str(err["loc"][-1]), fields)
            unknown.append((path, f" ({hint})" if hint else ""))
        else:
            problems.append(f"{path}: {err['msg']} (got {trim(repr(err.get('input')), 80)})")
    if unknown:  # one statement for every unknown option, however many
        known = ", ".join(fields) if fields else "none"
        said = (f"{unknown[0][0]}: unknown option{unknown[0][1]}" if len(unknown) == 1 else
                f"{len(unknown)} unknown options: "
                + some([p + h for p, h in unknown], sep=", ", each=80))
        problems.insert(0, f"{said}; {entry.kind} {entry.name!r} takes: {trim(known, 300)}")
    problems = [some(problems, each=450)]
    return SpecError("; ".join(problems),
                     fix=f"correct the option(s); `gantk show {entry.name}` lists every option "
                         "with its type and default.")


class Registry:
    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.aliases: dict[str, Alias] = {}
        self.metadata: dict[str, dict[str, Any]] = {}
        self.alias_metadata: dict[str, dict[str, Any]] = {}
        self.broken: dict[str, str] = {}  # plugins that failed to load or register: name -> error
        self.metadata_source: dict[str, str] = {}  # metadata section -> plugin whose file gave it

    # ------------------------------------------------------------------ building
    def add(self, entry: Entry) -> None:
        if entry.kind not in KINDS:
            raise PluginError(f"component {entry.name!r} has unknown kind {entry.kind!r}",
                              where=f"plugin {entry.plugin}", fix=f"use one of {', '.join(KINDS)}.")
        if entry.name in self.entries or entry.name in self.aliases:
            other = self.entries.get(entry.name) or self.aliases[entry.name]
            raise PluginError(f"the name {entry.name!r} is registered twice (also by "
                              f"{other.plugin!r})", where=f"plugin {entry.plugin}",
                              fix="rename one component or disable one plugin "
                                  "(GANTK_DISABLE_PLUGINS=name).")
        self.entries[entry.name] = entry

    def load_metadata(self, path: str | Path, *, plugin: str = "") -> None:
        """Read one ``registry.toml`` of ``plugin``; a file that is unreadable, not TOML or has a
        section of the wrong shape is refused whole (PluginError), and nothing of it is kept."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PluginError(f"cannot read registry metadata: {trim(exc, 300)}", where=str(path),
                              fix="repair the TOML file.") from None
        sections = {}
        for table in ("components", "aliases"):
            part = data.get(table, {})
            if not isinstance(part, dict):
                raise PluginError(f"[{table}] is not a table", where=str(path),
                                  fix="repair the TOML file (docs/plugins.md shows its form).")
            for name, meta in part.items():
                problem = _metadata_problem(meta, alias=table == "aliases")
                if problem:
                    raise PluginError(f"{table}.{trim(name, 60)}: {problem}", where=str(path),
                                      fix="repair the TOML file (docs/plugins.md shows its form).")
            sections[table] = part
        for name, meta in sections["components"].items():
            self.metadata.setdefault(name, {}).update(meta)
            self.metadata_source[name] = plugin
        for name, meta in sections["aliases"].items():
            self.alias_metadata.setdefault(name, {}).update(meta)
            self.metadata_source.setdefault(f"alias:{name}", plugin)

    def drop_metadata(self, plugin: str) -> None:
        """Forget the metadata sections ``plugin``'s files gave."""
        for key, owner in list(self.metadata_source.items()):
            if owner == plugin:
                del self.metadata_source[key]
                if key.startswith("alias:"):
                    self.alias_metadata.pop(key[len("alias:"):], None)
                else:
                    self.metadata.pop(key, None)

    def drop_plugin(self, plugin: str) -> None:
        """Remove everything ``plugin`` registered or described (a plugin found broken late)."""
        self.entries = {n: e for n, e in self.entries.items() if e.plugin != plugin}
        self.aliases = {n: a for n, a in self.aliases.items() if a.plugin != plugin}
        self.drop_metadata(plugin)

    def apply_metadata(self) -> list[tuple[str, PluginError]]:
        """Merge TOML metadata into registered entries (TOML fills what code left empty; TOML
        ``defaults`` override the params model's defaults and must name real options).

        Returns the sections that do not fit their entry as ``(plugin, error)``, the plugin being
        the one whose file gave the section (the caller reports and drops it)."""

        failed: list[tuple[str, PluginError]] = []
        for name, meta in list(self.metadata.items()):
            entry = self.entries.get(name)
            if entry is None:
                continue
            defaults = meta.get("defaults", {})
            unknown = set(defaults) - set(entry.params.model_fields)
            if unknown:
                failed.append((self.metadata_source.get(name) or entry.plugin, PluginError(
                    f"registry.toml gives defaults for unknown option(s) {sorted(unknown)} of "
                    f"{name!r}", where=f"components.{name}.defaults",
                    fix="make registry.toml's defaults match the component's Params.")))
                continue
            for key in ("title", "paper", "summary"):
                if meta.get(key) and not getattr(entry, key):
                    setattr(entry, key, meta[key])
            entry.needs = entry.needs | frozenset(meta.get("needs", ()))
            entry.provides = entry.provides | frozenset(meta.get("provides", ()))
            entry.conflicts = entry.conflicts | frozenset(meta.get("conflicts", ()))
            entry.cost = {**meta.get("cost", {}), **entry.cost}
            entry.defaults = {**defaults, **entry.defaults}
        for name, meta in self.alias_metadata.items():
            if name not in self.aliases and "expands" in meta:
                self.aliases[name] = Alias(name=name, expands=tuple(meta["expands"]),
                                           summary=meta.get("summary", ""),
                                           title=meta.get("title", ""), paper=meta.get("paper", ""),
                                           plugin="registry.toml")
        return failed

    # ------------------------------------------------------------------ lookup
    def names(self, kind: str | tuple[str, ...] | None = None) -> list[str]:
        kinds = (kind,) if isinstance(kind, str) else kind
        return sorted(n for n, e in self.entries.items() if kinds is None or e.kind in kinds)

    def get(self, name: str, kind: str | tuple[str, ...], *, where: str) -> Entry:
        kinds = (kind,) if isinstance(kind, str) else kind
        entry = self.entries.get(name)
        if entry is not None and entry.kind in kinds:
            return entry
        choices = self.names(kinds) + (list(self.aliases) if "method" in kinds else [])
        label = ("method" if set(kinds) == set(STACKABLE)
                 else " or ".join(k.replace("_", " ") for k in kinds))
        if entry is not None:
            msg = f"{name!r} is a {entry.kind.replace('_', ' ')}, not a {label}"
        elif name in self.metadata:
            msg = (f"{name!r} is described in registry.toml but no installed plugin provides it "
                   "(is its plugin broken or disabled? see `gantk list-plugins`)")
        else:
            hint = suggest(name, choices)
            msg = f"unknown {label} {name!r}" + (f"; {hint}" if hint else "")
        fix = f"use one of: {', '.join(choices) or '(none installed)'}."
        if entry is None and self.broken:
            failed = "; ".join(f"{n} ({err[:200]})" for n, err in sorted(self.broken.items()))
            msg += (f". {len(self.broken)} plugin(s) failed to load and may be the one that "
                    f"provides it: {failed}")
            fix = ("repair or reinstall the broken plugin (`gantk list-plugins` shows it with its "
                   "error), or " + fix)
        raise SpecError(msg, where=where, fix=fix)

    def expand(self, name: str) -> tuple[str, ...]:
        """Method names behind ``name`` (an alias expands to several)."""

        alias = self.aliases.get(name)
        return alias.expands if alias else (name,)

    def describe(self) -> list[dict[str, Any]]:
        rows = [e.describe() for e in self.entries.values()]
        for alias in self.aliases.values():
            rows.append({"name": alias.name, "kind": "method", "plugin": alias.distribution or
                         alias.plugin, "entry_point": alias.plugin, "version": alias.version,
                         "title": alias.title, "paper": alias.paper,
                         "summary": alias.summary or f"alias for {' + '.join(alias.expands)}",
                         "needs": [], "conflicts": [], "cost": {}, "status": "ok",
                         "expands": list(alias.expands)})
        registered = set(self.entries) | set(self.aliases)
        for name, meta in self.metadata.items():
            if name not in registered:
                rows.append({"name": name, "kind": meta.get("kind", "method"),
                             "plugin": meta.get("plugin", ""), "entry_point": "", "version": "",
                             "title": meta.get("title", ""), "paper": meta.get("paper", ""),
                             "summary": meta.get("summary", ""), "needs": meta.get("needs", []),
                             "conflicts": meta.get("conflicts", []), "cost": meta.get("cost", {}),
                             "status": "not installed"})
        for row in rows:  # text a plugin handed over: bounded, whatever its size
            for key in ("summary", "title", "paper"):
                row[key] = trim(row.get(key) or "", SUMMARY_LIMIT if key == "summary" else 200)
        return sorted(rows, key=lambda r: (KINDS.index(r["kind"]) if r["kind"] in KINDS else 99,
                                           str(r["name"])))


SUMMARY_LIMIT = 400  # characters of a summary list-plugins shows (a plugin may hand megabytes)


class RegistrationError(PluginError):
    """A ``register.KIND(...)`` call with an unknown keyword or a value of the wrong type: the
    plugin is reported as broken (the others still load), or is an error under ``--strict``."""


# The keywords every register.KIND(name, factory, ...) call accepts (docs/plugins.md lists them);
# register.dataset also takes ``info``.
KEYWORDS = ("params", "summary", "title", "paper", "needs", "provides", "conflicts", "cost",
            "defaults", "check", "extra")


def check_keywords(kind: str, name: str, meta: dict[str, Any], *, plugin: str) -> None:
    """Refuse what ``Entry`` would choke on, in the plugin author's terms."""

    allowed = KEYWORDS + (("info",) if kind == "dataset" else ()) + \
        (("ema",) if kind == "backbone" else ())
    where = f"plugin {plugin!r}, register.{kind}({name!r}, ...)"
    for key in meta:
        if key not in allowed:
            hint = suggest(key, allowed)
            raise RegistrationError(f"unknown keyword {key!r}" + (f"; {hint}" if hint else ""),
                                    where=where, fix=f"use only {', '.join(allowed)} "
                                                     "(docs/plugins.md describes each).")
    problems = [f"{key} must be a list of names, e.g. {key}=[{meta[key]!r}], not a string"
                for key in ("needs", "provides", "conflicts") if isinstance(meta.get(key), str)]
    params = meta.get("params")
    if params is not None and not (isinstance(params, type) and issubclass(params, BaseModel)):
        problems.append(f"params must be a pydantic BaseModel class, not {params!r}")
    problems += [f"{key} must be a dict, not {type(meta[key]).__name__}"
                 for key in ("cost", "defaults", "extra")
                 if key in meta and not isinstance(meta[key], dict)]
    problems += [f"{key} must be callable" for key in ("check", "info")
                 if meta.get(key) is not None and not callable(meta[key])]
    if meta.get("ema") is not None and not isinstance(meta["ema"], EmaDefault):
        problems.append(f"ema must be a gantk.EmaDefault, not {meta['ema']!r}")
    if problems:
        raise RegistrationError("; ".join(problems), where=where,
                                fix="correct the registration (docs/plugins.md describes each "
                                    "keyword).")


class Registrar:
    """The ``register`` object a plugin's ``gantk_register`` hook receives."""

    def __init__(self, registry: Registry, *, plugin: str, distribution: str = "",
                 version: str = "") -> None:
        self._registry = registry
        self._origin = {"plugin": plugin, "distribution": distribution, "version": version}

    def _add(self, kind: str, name: str, factory: Callable[..., Any], **meta: Any) -> Entry:
        check_keywords(kind, name, meta, plugin=self._origin["plugin"])
        params = meta.pop("params", None) or NoParams
        for key in ("needs", "provides", "conflicts"):
            meta[key] = frozenset(meta.get(key, ()))
        entry = Entry(name=name, kind=kind, factory=factory, params=params, **self._origin, **meta)
        self._registry.add(entry)
        return entry

    def backbone(self, name: str, factory: Callable[..., Any], **meta: Any) -> Entry:
        """``factory(params, data: DataInfo) -> Backbone``; ``ema=EmaDefault(...)`` declares the
        EMA of G the family's original uses (applied when a stack sets no ``train.ema_*``)."""
        return self._add("backbone", name, factory, **meta)

    def loss(self, name: str, factory: Callable[..., Any], **meta: Any) -> Entry:
        """``factory(params) -> Loss``."""
        return self._add("loss", name, factory, **meta)

    def latent_transform(self, name: str, factory: Callable[..., Any], **meta: Any) -> Entry:
        """``factory(params, ctx: BuildContext) -> LatentTransform``."""
        return self._add("latent_transform", name, factory, **meta)

    def regularizer(self, name: str, factory: Callable[..., Any], **meta: Any) -> Entry:
        """``factory(params, ctx: BuildContext) -> Regularizer``."""
        return self._add("regularizer", name, factory, **meta)

    def method(self, name: str, factory: Callable[..., Any], **meta: Any) -> Entry:
        """``factory(params, ctx: BuildContext) -> Component | list[Component]``."""
        return self._add("method", name, factory, **meta)

    def dataset(self, name: str, factory: Callable[..., Any], *, info: Callable[..., Any],
                **meta: Any) -> Entry:
        """``factory(params) -> (x, y or None)`` and ``info(params) -> DataInfo``."""
        return self._add("dataset", name, factory, info=info, **meta)

    def metric(self, name: str, factory: Callable[..., Any], **meta: Any) -> Entry:
        """``factory(params) -> metric object`` (see ``gantk.metrics``)."""
        return self._add("metric", name, factory, **meta)

    def logger(self, name: str, factory: Any, *, requires: str | None = None, **meta: Any) -> Entry:
        """A name for ``train.loggers``; the plugin does its work in the event hooks. ``requires``
        is the import name of an optional library: training with the logger is refused, with the
        install command, when it is missing."""
        entry = self._add("logger", name, factory, **meta)
        entry.extra["requires"] = requires
        return entry

    def alias(self, name: str, expands: list[str] | tuple[str, ...], *, summary: str = "",
              title: str = "", paper: str = "") -> None:
        """A stack name that expands to several methods, e.g. ``qua+ = advlat_qua + advlat_z``."""
        if name in self._registry.entries or name in self._registry.aliases:
            raise PluginError(f"the name {name!r} is registered twice",
                              where=f"plugin {self._origin['plugin']}", fix="rename the alias.")
        self._registry.aliases[name] = Alias(name=name, expands=tuple(expands), summary=summary,
                                             title=title, paper=paper, **self._origin)
