"""Which keys of a result are scores, and which way each is better.

The one place that says it: an evaluation row (``eval.jsonl``), a sweep result and a training log
row carry bookkeeping next to the scores (the step, sample counts, times, the seed);
:func:`score_keys` is what ``gantk eval``/``plot``, the sweep summary and the verdicts count as
scores. The registered metrics declare the direction of each key they output
(:func:`directions`); informational keys (a feature space, a bin count) have none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..base.errors import SpecError, suggest

# Numbers in a result row that are not scores.
NOT_SCORES = frozenset({"step", "n", "n_real", "seconds", "time", "timestamp", "seed", "it_per_s"})


def score_keys(row: dict[str, Any], *, keep_inf: bool = False) -> list[str]:
    """The numeric score keys of a result or evaluation row (what ``gantk plot`` draws and a
    sweep summarises): numbers that are not :data:`NOT_SCORES`. An infinite value (a metric
    that diverged) counts only with ``keep_inf``: a summary reports it, a plot cannot draw it."""

    return [k for k, v in row.items() if k not in NOT_SCORES
            and isinstance(v, (int, float)) and not isinstance(v, bool)
            and (keep_inf or not (isinstance(v, float) and math.isinf(v)))]


def default_registry() -> Any:
    from ..stack.plugins import get_registry

    return get_registry()


def metric_entries(registry: Any) -> dict[str, Any]:
    return {name: registry.entries[name] for name in registry.names("metric")}


def directions(registry: Any) -> dict[str, tuple[str, str | None]]:
    """``{output key: (metric name, direction or None for informational keys)}``."""

    out: dict[str, tuple[str, str | None]] = {}
    for name, entry in metric_entries(registry).items():
        cls = entry.factory if isinstance(entry.factory, type) else None
        obj = cls if cls is not None else entry.factory(entry.make_params({}, where=name))
        for key, direction in getattr(obj, "directions", {}).items():
            out[key] = (name, direction)
        for key in getattr(obj, "extras", ()):
            out[key] = (name, None)
    return out


def metric_direction(key: str, *, registry: Any = None) -> str:
    """``"min"`` or ``"max"``: which way ``key`` (``fid``, ``coverage``, ``eval/fid``...) is better."""

    registry = registry or default_registry()
    key = key.removeprefix("eval/")
    table = directions(registry)
    if key in table and table[key][1] is not None:
        return table[key][1]
    scores = sorted(k for k, (_, d) in table.items() if d is not None)
    if key in table:
        raise SpecError(f"{key!r} describes how metric {table[key][0]!r} was computed; it is not "
                        "a score", where=key, fix=f"choose a score: {', '.join(scores)}.")
    hint = suggest(key, scores)
    raise SpecError(f"no installed metric reports {key!r}" + (f"; {hint}" if hint else ""),
                    where=key, fix=f"choose one of: {', '.join(scores) or '(none installed)'}.")


def resolve_metric_names(names: Iterable[str], *, registry: Any = None) -> list[str]:
    """Registered metric names for what a user typed: metric names (``prdc``) or output keys
    (``coverage`` -> ``prdc``), comma lists allowed, duplicates dropped, order kept."""

    registry = registry or default_registry()
    known = set(registry.names("metric"))
    by_key = {k: m for k, (m, _) in directions(registry).items()}
    out: list[str] = []
    for raw in names:
        for name in (s.strip() for s in str(raw).split(",")):
            if not name:
                continue
            metric = name if name in known else by_key.get(name)
            if metric is None:
                hint = suggest(name, sorted(known | set(by_key)))
                raise SpecError(f"unknown metric {name!r}" + (f"; {hint}" if hint else ""),
                                where="metrics",
                                fix=f"use one of: {', '.join(sorted(known)) or '(none installed)'}"
                                    " (`gantk list-plugins` shows metric plugins).")
            if metric not in out:
                out.append(metric)
    return out
