"""A sweep's table as data: mean +- std over seeds per cell, the verdicts of every cell against
the baseline (:mod:`gantk.sweep_verdicts`), the training curves and the baseline's convergence.
The files (``summary.md``, ``.json``, ``.csv``, ``.png``) are written by :mod:`gantk.sweep_report`.

Pure over the per-run results (``{"cell": ..., "seed": ..., "result": {...}}``), so the arithmetic
is testable without training anything. The standard deviation is the sample one (ddof = 1) over
the seeds that finished; with one seed it is NaN (shown as ``n/a``), never a made-up 0. Each
cell's raw per-seed values are kept (``values`` with their ``seeds``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..metrics.scores import score_keys

#: result keys that describe the evaluation rather than score it


@dataclass
class CellSummary:
    """One row of the table: a cell's scores over its seeds."""

    cell: str
    overrides: list[str]
    seeds: list[int]
    stats: dict[str, dict[str, float]] = field(default_factory=dict)  # key -> mean, std, n, diff
    failed: dict[int, str] = field(default_factory=dict)  # seed -> error paragraph
    pending: list[int] = field(default_factory=list)  # seeds neither finished nor failed
    shared: str = ""  # a train_as cell: whose networks it samples, and with what
    steps: list[int] = field(default_factory=list)  # the training steps its results come from

    def as_dict(self) -> dict[str, Any]:
        out = {"cell": self.cell, "overrides": self.overrides, "seeds": self.seeds,
               "metrics": self.stats, "failed": {str(k): v for k, v in self.failed.items()},
               "pending": self.pending, "steps": self.steps}
        if self.shared:
            out["shared"] = self.shared
        return out


@dataclass
class Summary:
    """The whole table, as data (what ``gantk.sweep`` returns)."""

    name: str
    baseline: str
    keys: list[str]
    cells: list[CellSummary]
    spaces: dict[str, str] = field(default_factory=dict)  # feature_space, is_space, modes_space
    directions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # warnings about what the table compares
    #: cell -> key -> [{"step", "mean", "std", "n", "values"}] from the in-training evaluations
    curves: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    #: key -> the baseline's convergence reading (:func:`gantk.sweep_verdicts.trends`)
    convergence: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: every (cell, key) against the baseline (:func:`gantk.sweep_verdicts.verdicts`)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    #: primary keys, test, alpha, score, corrections: how the verdicts were reached
    protocol: dict[str, Any] = field(default_factory=dict)
    #: runs this call's sweep saw stopped by a signal to their own process ("CELL seed S")
    stopped: list[str] = field(default_factory=list)
    #: runs this call handed to a detached launcher (``--submit``), and the runs it held back
    #: (``train_as`` runs whose source has not finished: the next call submits them)
    submitted: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)

    def row(self, cell: str) -> CellSummary:
        return next(c for c in self.cells if c.cell == cell)

    def verdict(self, cell: str, key: str) -> dict[str, Any] | None:
        """The comparison of ``cell`` with the baseline on ``key`` (None for the baseline)."""
        return next((v for v in self.verdicts if v["cell"] == cell and v["metric"] == key), None)

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows: one per (cell, metric key), as in summary.csv."""

        out = []
        for c in self.cells:
            for key in self.keys:
                s = c.stats.get(key)
                if s is not None:
                    out.append({"cell": c.cell, "metric": key, **s,
                                "baseline": c.cell == self.baseline})
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "baseline": self.baseline, "metrics": self.keys,
                "directions": self.directions, "spaces": self.spaces, "notes": self.notes,
                "protocol": self.protocol, "verdicts": self.verdicts,
                "cells": [c.as_dict() for c in self.cells], "curves": self.curves,
                "convergence": self.convergence, "stopped": self.stopped}


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; NaN for fewer than two values)."""

    arr = np.asarray(values, dtype=np.float64)
    if len(arr) == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else float("nan")


def summarize(name: str, cells: list[tuple[str, list[str]]], seeds: list[int], baseline: str,
              results: list[dict[str, Any]], *, directions: dict[str, str] | None = None,
              shared: dict[str, str] | None = None) -> Summary:
    """The table from per-run records ``{"cell", "seed", "result"}`` or ``{"cell", "seed",
    "error"}``. ``directions`` (``{key: "min"|"max"}``) picks the score keys; without it every
    numeric key is kept. ``shared`` describes the ``train_as`` cells (cell -> text)."""

    directions = directions or {}
    by_cell: dict[str, dict[int, dict[str, Any]]] = {c: {} for c, _ in cells}
    failed: dict[str, dict[int, str]] = {c: {} for c, _ in cells}
    spaces: dict[str, str] = {}
    keys: list[str] = []
    for rec in results:
        if "error" in rec:
            failed[rec["cell"]][rec["seed"]] = rec["error"]
            continue
        by_cell[rec["cell"]][rec["seed"]] = rec["result"]
        for k in ("feature_space", "is_space", "modes_space"):
            if k in rec["result"]:
                spaces.setdefault(k, rec["result"][k])
        for k in score_keys(rec["result"], keep_inf=True):
            if (not directions or k in directions) and k not in keys:
                keys.append(k)
    def score(cell: str, seed: int, k: str) -> float | None:  # None: that run has no number
        v = by_cell[cell].get(seed, {}).get(k)
        return v if isinstance(v, (int, float)) else None

    out, notes = [], []
    for cell, overrides in cells:
        cs = CellSummary(cell, list(overrides), list(seeds), failed=failed[cell],
                         shared=(shared or {}).get(cell, ""))
        cs.pending = [s for s in seeds if s not in by_cell[cell] and s not in failed[cell]]
        cs.steps = sorted({int(r["step"]) for r in by_cell[cell].values()
                           if isinstance(r.get("step"), (int, float))})
        for k in keys:
            got = {seed: v for seed in seeds if (v := score(cell, seed, k)) is not None}
            if not got:
                continue
            vals = list(got.values())
            m, sd = mean_std(vals)
            cs.stats[k] = {"mean": m, "std": sd, "n": len(vals), "values": vals,
                           "seeds": list(got)}
            undefined = [seed for seed, v in got.items() if math.isnan(v)]
            if undefined:
                rest = [v for v in vals if not math.isnan(v)]
                notes.append(f"{k} is undefined (NaN) for {cell} seed(s) "
                             f"{', '.join(map(str, undefined))}, so that cell's mean is NaN (a "
                             f"mean over the other seeds would leave out the worst case) and the "
                             f"verdicts pair only the seeds with a value; "
                             + (f"the other seeds: {', '.join(f'{v:.4g}' for v in rest)}" if rest
                                else "no seed of it has a value"))
        out.append(cs)
    base = next((c for c in out if c.cell == baseline), None)
    for c in out:
        for k, st in c.stats.items():
            b = base.stats.get(k) if base is not None else None
            st["diff"] = st["mean"] - b["mean"] if b is not None else float("nan")
    return Summary(name, baseline, keys, out, spaces,
                   {k: directions[k] for k in keys if k in directions}, notes=notes)


def final_scores(s: Summary) -> dict[str, dict[str, dict[int, float]]]:
    """cell -> key -> seed -> the run's final score (what the verdicts pair by seed)."""
    return {c.cell: {k: dict(zip(st["seeds"], st["values"])) for k, st in c.stats.items()}
            for c in s.cells}


#: per_run[cell][key][seed][step] = one in-training evaluation
Curves = dict[str, dict[str, dict[int, dict[int, float]]]]


def run_curves(evals: list[dict[str, Any]], keys: Sequence[str]) -> Curves:
    """``{"cell", "seed", "records": [{"step": ..., key: ...}, ...]}`` (each run's in-training
    evaluations) -> per-run curves (a step evaluated twice in one run counts with its last
    record)."""

    out: Curves = {}
    for ev in evals:
        for rec in ev["records"]:
            step = rec.get("step")
            if not isinstance(step, (int, float)) or isinstance(step, bool):
                continue
            for k in keys:
                v = rec.get(k)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out.setdefault(ev["cell"], {}).setdefault(k, {}).setdefault(
                        ev["seed"], {})[int(step)] = float(v)
    return out


def curve_points(per_run: Curves, cells: list[str], seeds: list[int]
                 ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Mean +- std over the seeds that reached each evaluated step, per cell and score key."""

    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for cell in cells:
        for k, by_seed in per_run.get(cell, {}).items():
            points = []
            for step in sorted({st for curve in by_seed.values() for st in curve}):
                vals = [by_seed[sd][step] for sd in seeds if step in by_seed.get(sd, {})]
                m, sd_ = mean_std(vals)
                points.append({"step": step, "mean": m, "std": sd_, "n": len(vals),
                               "values": vals})
            out.setdefault(cell, {})[k] = points
    return out


def curves(cells: list[str], seeds: list[int], evals: list[dict[str, Any]], keys: list[str]
           ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """:func:`curve_points` of the runs' evaluation records (:func:`run_curves`)."""

    return curve_points(run_curves(evals, keys), cells, seeds)
