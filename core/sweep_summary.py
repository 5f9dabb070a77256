"""A sweep's table: mean +- std over seeds per cell, differences to the baseline cell, and the
files ``summary.md``, ``summary.json``, ``summary.csv`` and ``summary.png`` (error bars).

Pure over the per-run results (``{"cell": ..., "seed": ..., "result": {...}}``), so the arithmetic
is testable without training anything. The standard deviation is the sample one (ddof = 1) over
the seeds that finished; with one seed it is NaN (shown as ``n/a``), never a made-up 0.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: result keys that describe the evaluation rather than score it
_NOT_SCORES = {"step", "n", "n_real", "seconds", "time", "timestamp", "seed", "it_per_s"}


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

    def row(self, cell: str) -> CellSummary:
        return next(c for c in self.cells if c.cell == cell)

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
                "cells": [c.as_dict() for c in self.cells]}


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; NaN for fewer than two values)."""

    arr = np.asarray(values, dtype=np.float64)
    if len(arr) == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else float("nan")


def score_keys_of(result: dict[str, Any]) -> list[str]:
    return [k for k, v in result.items() if k not in _NOT_SCORES and isinstance(v, (int, float))
            and not isinstance(v, bool)]


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
        for k in score_keys_of(rec["result"]):
            if (not directions or k in directions) and k not in keys:
                keys.append(k)
    out = []
    for cell, overrides in cells:
        cs = CellSummary(cell, list(overrides), list(seeds), failed=failed[cell],
                         shared=(shared or {}).get(cell, ""))
        cs.pending = [s for s in seeds if s not in by_cell[cell] and s not in failed[cell]]
        cs.steps = sorted({int(r["step"]) for r in by_cell[cell].values()
                           if isinstance(r.get("step"), (int, float))})
        for k in keys:
            vals = [by_cell[cell][s][k] for s in seeds
                    if s in by_cell[cell] and isinstance(by_cell[cell][s].get(k), (int, float))]
            if vals:
                m, sd = mean_std(vals)
                cs.stats[k] = {"mean": m, "std": sd, "n": len(vals), "values": vals}
        out.append(cs)
    base = next((c for c in out if c.cell == baseline), None)
    for c in out:
        for k, s in c.stats.items():
            b = base.stats.get(k) if base is not None else None
            s["diff"] = s["mean"] - b["mean"] if b is not None else float("nan")
    return Summary(name, baseline, keys, out, spaces,
                   {k: directions[k] for k in keys if k in directions})


# ---------------------------------------------------------------------------- files


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.4g}"


def write_markdown(s: Summary, path: Path) -> Path:
    arrows = {"min": " (lower is better)", "max": " (higher is better)"}
    lines = [f"# Sweep {s.name}", "",
             f"Mean +- sample std over seeds (n = seeds that finished); baseline cell: "
             f"**{s.baseline}**; d = difference of the means to the baseline.", ""]
    for k, v in s.spaces.items():
        lines.append(f"- {k}: {v}")
    for k in s.keys:
        lines.append(f"- {k}{arrows.get(s.directions.get(k, ''), '')}")
    for c in s.cells:
        if c.shared:
            lines.append(f"- {c.cell}: {c.shared}")
    lines += [f"- **Warning:** {note}" for note in s.notes]
    lines += ["", "| cell | n | " + " | ".join(s.keys) + " |",
              "|---|---|" + "---|" * len(s.keys)]
    for c in s.cells:
        ns = sorted({st["n"] for st in c.stats.values()}) or [0]
        cells = []
        for k in s.keys:
            st = c.stats.get(k)
            if st is None:
                cells.append("n/a")
                continue
            text = f"{_fmt(st['mean'])} +- {_fmt(st['std'])}"
            if c.cell != s.baseline and not math.isnan(st["diff"]):
                text += f" (d {st['diff']:+.3g})"
            cells.append(text)
        name = f"**{c.cell}** (baseline)" if c.cell == s.baseline else c.cell
        lines.append(f"| {name} | {'/'.join(map(str, ns))} | " + " | ".join(cells) + " |")
    problems = [(c.cell, seed, err) for c in s.cells for seed, err in sorted(c.failed.items())]
    if problems:
        lines += ["", "## Failed runs", ""]
        lines += [f"- {cell} seed {seed}: {err}" for cell, seed, err in problems]
    pending = [(c.cell, seed) for c in s.cells for seed in c.pending]
    if pending:
        lines += ["", "Not finished: " + ", ".join(f"{c} seed {sd}" for c, sd in pending)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_csv(s: Summary, path: Path) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["cell", "metric", "mean", "std", "n", "diff_to_baseline", "baseline", "values"])
        for r in s.rows():
            w.writerow([r["cell"], r["metric"], repr(r["mean"]), repr(r["std"]), r["n"],
                        repr(r["diff"]), r["baseline"], " ".join(repr(v) for v in r["values"])])
    return path


def write_json(s: Summary, path: Path) -> Path:
    path.write_text(json.dumps(s.as_dict(), indent=2, allow_nan=True) + "\n")
    return path


def write_figure(s: Summary, path: Path) -> Path | None:
    """One panel per metric key: each cell's mean with a +- std error bar, seeds as dots."""

    if not s.keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .cli_eval import _save_figure

    cols = min(3, len(s.keys))
    rows = math.ceil(len(s.keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 0.5 + 0.45 * len(s.cells) * rows + 1),
                             squeeze=False)
    names = [c.cell for c in s.cells]
    for ax, key in zip(axes.flat, s.keys):
        for i, c in enumerate(s.cells):
            st = c.stats.get(key)
            if st is None:
                continue
            err = 0 if math.isnan(st["std"]) else st["std"]
            color = "tab:red" if c.cell == s.baseline else "tab:blue"
            ax.errorbar(st["mean"], i, xerr=err, fmt="o", color=color, capsize=4)
            ax.plot(st["values"], [i] * len(st["values"]), "x", color="grey", alpha=0.6)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.invert_yaxis()
        arrow = {"min": " (lower better)", "max": " (higher better)"}.get(
            s.directions.get(key, ""), "")
        ax.set_title(key + arrow, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(s.keys):]:
        ax.axis("off")
    return _save_figure(fig, path, f"{s.name}: mean +- std over seeds (red: baseline "
                                   f"{s.baseline})")


def write_all(s: Summary, out: Path, stem: str = "summary") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = [write_markdown(s, out / f"{stem}.md"), write_json(s, out / f"{stem}.json"),
             write_csv(s, out / f"{stem}.csv"), write_figure(s, out / f"{stem}.png")]
    return [f for f in files if f is not None]
