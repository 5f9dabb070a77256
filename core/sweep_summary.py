"""A sweep's table: mean +- std over seeds per cell, differences to the baseline cell, and the
files ``summary.md``, ``summary.json``, ``summary.csv`` and ``summary.png`` (error bars).

Pure over the per-run results (``{"cell": ..., "seed": ..., "result": {...}}``), so the arithmetic
is testable without training anything. The standard deviation is the sample one (ddof = 1) over
the seeds that finished; with one seed it is NaN (shown as ``n/a``), never a made-up 0.

Two readings come with every difference to the baseline: whether it is *beyond the spread*
(larger than both cells' std, the bar docs/reproduction.md sets for "reproduced"), and on how many
seeds the cell beats the baseline's run of the same seed. From the in-training evaluations
(``train.eval_every``) come the training curves (mean +- std over seeds at each step,
``summary_curves.png``) and the baseline's convergence: the change of its mean over the last
quarter of training against the seed spread (:func:`convergence`).
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
    #: cell -> key -> [{"step", "mean", "std", "n", "values"}] from the in-training evaluations
    curves: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    #: key -> the baseline's convergence reading (:func:`convergence`)
    convergence: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: runs this call's sweep saw stopped by a signal to their own process ("CELL seed S")
    stopped: list[str] = field(default_factory=list)

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
                "cells": [c.as_dict() for c in self.cells], "curves": self.curves,
                "convergence": self.convergence, "stopped": self.stopped}


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
            cs.stats[k] = {"mean": m, "std": sd, "n": len(vals), "values": vals}
            undefined = [seed for seed, v in got.items() if math.isnan(v)]
            if undefined:
                rest = [v for v in vals if not math.isnan(v)]
                notes.append(f"{k} is undefined (NaN) for {cell} seed(s) "
                             f"{', '.join(map(str, undefined))}, so that cell's mean is NaN (a "
                             f"mean over the other seeds would leave out the worst case); "
                             + (f"the other seeds: {', '.join(_fmt(v) for v in rest)}" if rest
                                else "no seed of it has a value"))
        out.append(cs)
    base = next((c for c in out if c.cell == baseline), None)
    for c in out:
        for k, s in c.stats.items():
            b = base.stats.get(k) if base is not None else None
            s["diff"] = s["mean"] - b["mean"] if b is not None else float("nan")
            if b is None or c is base:
                continue
            s["beyond_spread"] = beyond_spread(s["diff"], s["std"], b["std"])
            pairs = [(v, w) for seed in seeds if (v := score(c.cell, seed, k)) is not None
                     and (w := score(baseline, seed, k)) is not None
                     and not (math.isnan(v) or math.isnan(w))]
            if directions.get(k) in ("min", "max") and pairs:
                sign = 1 if directions[k] == "max" else -1
                s["better_seeds"] = sum(sign * (v - w) > 0 for v, w in pairs)
                s["paired_seeds"] = len(pairs)
    return Summary(name, baseline, keys, out, spaces,
                   {k: directions[k] for k in keys if k in directions}, notes=notes)


def beyond_spread(diff: float, std_a: float, std_b: float) -> bool | None:
    """Whether a difference of means exceeds both cells' sample std (None when a cell has one
    seed, so no spread to compare with)."""

    if any(math.isnan(x) for x in (diff, std_a, std_b)):
        return None
    return abs(diff) > max(std_a, std_b)


def curves(cells: list[str], seeds: list[int], evals: list[dict[str, Any]], keys: list[str]
           ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Mean +- std over seeds at every evaluated training step, per cell and score key, from
    ``{"cell", "seed", "records": [{"step": ..., key: ...}, ...]}`` (a step evaluated twice in
    one run counts with its last record)."""

    per: dict[str, dict[str, dict[int, dict[int, float]]]] = {}
    for ev in evals:
        for rec in ev["records"]:
            step = rec.get("step")
            if not isinstance(step, (int, float)):
                continue
            for k in keys:
                v = rec.get(k)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    per.setdefault(ev["cell"], {}).setdefault(k, {}).setdefault(
                        int(step), {})[ev["seed"]] = float(v)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for cell in cells:
        for k, by_step in per.get(cell, {}).items():
            points = []
            for step in sorted(by_step):
                vals = [by_step[step][sd] for sd in seeds if sd in by_step[step]]
                m, sd_ = mean_std(vals)
                points.append({"step": step, "mean": m, "std": sd_, "n": len(vals),
                               "values": vals})
            out.setdefault(cell, {})[k] = points
    return out


def convergence(points: list[dict[str, Any]], direction: str, fraction: float = 0.25
                ) -> dict[str, Any]:
    """Has a curve stopped improving? Compares the mean at the last step every seed reached with
    the mean ``fraction`` of the training steps earlier (the nearest evaluation at or before it):
    ``improving`` when it got better by more than the seed spread (the larger std of the two
    steps), ``worse`` when it got worse by more, else ``flat``; ``best_step`` is where the mean
    was best. ``n/a`` when there are too few evaluations or one seed."""

    n_full = max((p["n"] for p in points), default=0)
    full = [p for p in points if p["n"] == n_full]
    if len(full) < 2:
        return {"status": "n/a", "reason": "fewer than two evaluations that every seed reached"}
    last = full[-1]
    target = last["step"] - max(fraction * last["step"], last["step"] - full[-2]["step"])
    earlier = [p for p in full[:-1] if p["step"] <= target + 1e-9]
    if not earlier:
        return {"status": "n/a", "reason": f"no evaluation at or before step {target:g}"}
    prev = earlier[-1]
    sign = -1 if direction == "min" else 1
    best = (min if direction == "min" else max)(full, key=lambda p: p["mean"])
    change = last["mean"] - prev["mean"]
    spread = max(last["std"], prev["std"])
    out = {"from_step": prev["step"], "to_step": last["step"], "from_mean": prev["mean"],
           "to_mean": last["mean"], "change": change, "spread": spread, "seeds": n_full,
           "best_step": best["step"], "best_mean": best["mean"]}
    if math.isnan(spread):
        return {**out, "status": "n/a", "reason": "one seed: no spread"}
    gain = sign * change
    out["status"] = "improving" if gain > spread else "worse" if -gain > spread else "flat"
    return out


def convergence_text(key: str, c: dict[str, Any]) -> str:
    if "from_step" not in c:
        return f"{key}: {c['reason']}"
    meaning = {"improving": "still improving (by more than the spread): not converged",
               "flat": "changed less than the spread: converged by this criterion",
               "worse": "worse by more than the spread: past its best",
               "n/a": c.get("reason", "")}[c["status"]]
    return (f"{key}: mean {_fmt(c['from_mean'])} at step {c['from_step']} -> "
            f"{_fmt(c['to_mean'])} at step {c['to_step']} ({c['change']:+.3g}; seed spread "
            f"{_fmt(c['spread'])}): {meaning}; best mean {_fmt(c['best_mean'])} at step "
            f"{c['best_step']}")


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
    lines.append("- `*` after d: the difference exceeds both cells' std (beyond the spread); "
                 "k/n: seeds on which the cell scores better than the baseline's run of the "
                 "same seed")
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
                mark = "*" if st.get("beyond_spread") else ""
                paired = (f", {st['better_seeds']}/{st['paired_seeds']}"
                          if "paired_seeds" in st else "")
                text += f" (d {st['diff']:+.3g}{mark}{paired})"
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
    if s.stopped:
        lines += ["", "Stopped by a signal to their own process, not failed (the same command "
                  "resumes them): " + ", ".join(s.stopped)]
    lines += _curve_lines(s)
    path.write_text("\n".join(lines) + "\n")
    return path


def _curve_lines(s: Summary) -> list[str]:
    if not s.curves:
        return []
    lines = ["", "## Training curves", "",
             "From the in-training evaluations (`train.eval_every`; their own sample count): "
             "mean +- std over the seeds that reached each step (n). Convergence of the "
             "baseline: the change of its mean over the last quarter of training against the "
             "larger seed std of the two steps.", ""]
    lines += [f"- {convergence_text(k, c)}" for k, c in s.convergence.items()]
    names = [c.cell for c in s.cells if c.cell in s.curves]
    for key in sorted({k for per in s.curves.values() for k in per}):
        steps = sorted({p["step"] for cell in names for p in s.curves[cell].get(key, [])})
        at = {cell: {p["step"]: p for p in s.curves[cell].get(key, [])} for cell in names}
        lines += ["", f"| {key}: step | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]
        for step in steps:
            row = []
            for cell in names:
                p = at[cell].get(step)
                row.append("" if p is None else
                           f"{_fmt(p['mean'])} +- {_fmt(p['std'])} ({p['n']})")
            lines.append(f"| {step} | " + " | ".join(row) + " |")
    return lines


def write_csv(s: Summary, path: Path) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["cell", "metric", "mean", "std", "n", "diff_to_baseline", "baseline",
                    "beyond_spread", "better_seeds", "paired_seeds", "values"])
        for r in s.rows():
            w.writerow([r["cell"], r["metric"], repr(r["mean"]), repr(r["std"]), r["n"],
                        repr(r["diff"]), r["baseline"], r.get("beyond_spread", ""),
                        r.get("better_seeds", ""), r.get("paired_seeds", ""),
                        " ".join(repr(v) for v in r["values"])])
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


def write_curves_figure(s: Summary, path: Path) -> Path | None:
    """One panel per evaluated key: each training cell's mean over steps, +- std as a band."""

    keys = sorted({k for per in s.curves.values() for k in per})
    if not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .cli_eval import _save_figure

    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for cell, per in s.curves.items():
            pts = per.get(key, [])
            if not pts:
                continue
            x = np.array([p["step"] for p in pts])
            m = np.array([p["mean"] for p in pts])
            sd = np.nan_to_num(np.array([p["std"] for p in pts]))
            width = 2.2 if cell == s.baseline else 1.2
            line, = ax.plot(x, m, lw=width, label=cell + (" (baseline)" if cell == s.baseline
                                                          else ""))
            ax.fill_between(x, m - sd, m + sd, color=line.get_color(), alpha=0.15)
        arrow = {"min": " (lower better)", "max": " (higher better)"}.get(
            s.directions.get(key, ""), "")
        ax.set_title(key + arrow, fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save_figure(fig, path, f"{s.name}: in-training evaluations, mean +- std over seeds")


def write_all(s: Summary, out: Path, stem: str = "summary") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = [write_markdown(s, out / f"{stem}.md"), write_json(s, out / f"{stem}.json"),
             write_csv(s, out / f"{stem}.csv"), write_figure(s, out / f"{stem}.png"),
             write_curves_figure(s, out / f"{stem}_curves.png")]
    return [f for f in files if f is not None]
