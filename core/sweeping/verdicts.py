"""A sweep's verdicts: every cell against the baseline, seed by seed, with :mod:`gantk.stats`.

Runs of one seed in two cells are paired (same initial G and D, data order and per-step latents;
docs/sweeps.md, "What a seed pairs"), so each comparison is a test on the per-seed differences:
the mean difference with its confidence interval, a p-value from the sweep's paired test
(``[stats] test``), Holm's correction within the primary family (the declared primary keys x the
cells) and within the secondary family (every other key x the cells), and a verdict word that
follows from the numbers: better, worse, or no difference detected together with the smallest
effect the sweep could have detected at its n.

A run's score is its final evaluation (``sweep_result.json``), or with ``[stats] last_k = k`` the
mean of its last k in-training evaluations (``train.eval_every``), which is less noisy than one
checkpoint. A ``train_as`` cell has only its final evaluation, so it and the baseline are then
compared on final scores (each comparison names its ``score``).

The baseline's convergence is read from every in-training evaluation of the last quarter of
training (a slope per seed and a t interval over seeds, :func:`gantk.stats.trend`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .stats import Trend, analyze, last_k_mean, trend
from .summary import Curves

FINAL = "final evaluation"


def last_k_label(k: int) -> str:
    return f"mean of the last {k} in-training evaluations"


def last_k_scores(curves: Curves, k: int) -> dict[str, dict[str, dict[int, float]]]:
    """cell -> key -> seed -> the mean of that run's last ``k`` evaluations (runs with fewer
    than ``k`` are left out)."""

    out: dict[str, dict[str, dict[int, float]]] = {}
    for cell, per_key in curves.items():
        for key, per_seed in per_key.items():
            for seed, curve in per_seed.items():
                if len(curve) >= k:
                    out.setdefault(cell, {}).setdefault(key, {})[seed] = last_k_mean(curve, k)
    return out


def verdicts(final: Mapping[str, Mapping[str, Mapping[int, float]]], *, cells: Sequence[str],
             baseline: str, primary: Sequence[str], directions: Mapping[str, str],
             test: str = "t", alpha: float = 0.05, last_k: int = 0, curves: Curves | None = None
             ) -> list[dict[str, Any]]:
    """Every (cell, key) against the baseline: :class:`gantk.stats.Comparison` as dicts, each with
    the ``score`` it used. ``final[cell][key][seed]`` are the runs' final scores; ``directions``
    maps keys to ``"min"``/``"max"``."""

    if baseline not in final:
        return []
    smooth = last_k_scores(curves or {}, last_k) if last_k else {}
    values: dict[str, dict[str, dict[int, float]]] = {}
    source: dict[tuple[str, str], str] = {}  # (cell, tagged key) -> the score it holds
    for cell in cells:
        if cell not in final:
            continue
        values[cell] = {}
        for key, runs in final[cell].items():
            use_smooth = (last_k and key in smooth.get(cell, {})
                          and key in smooth.get(baseline, {}))
            if cell == baseline:
                values[cell][key] = dict(smooth[cell][key]) if (last_k and key in smooth.get(
                    cell, {})) else dict(runs)
                if last_k and key in smooth.get(cell, {}):
                    values[cell][f"{key}@final"] = dict(runs)
                continue
            if use_smooth:
                values[cell][key] = dict(smooth[cell][key])
                source[(cell, key)] = last_k_label(last_k)
            elif last_k and key in smooth.get(baseline, {}):
                values[cell][f"{key}@final"] = dict(runs)  # pairs with the baseline's final
                source[(cell, f"{key}@final")] = FINAL
            else:
                values[cell][key] = dict(runs)
                source[(cell, key)] = FINAL
    better = {}
    for key, d in directions.items():
        better[key] = better[f"{key}@final"] = {"min": "lower", "max": "higher"}.get(d, "")
    tagged_primary = [*primary, *(f"{k}@final" for k in primary)]
    out = []
    for comp in analyze(values, baseline=baseline, primary=tagged_primary, better=better,
                        test=test, alpha=alpha):
        row = comp.to_dict()
        row["score"] = source.get((comp.cell, comp.metric), FINAL)
        row["metric"] = comp.metric.removesuffix("@final")
        row["sentence"] = comp.sentence()
        out.append(row)
    order = {c: i for i, c in enumerate(cells)}
    out.sort(key=lambda r: (not r["primary"], order.get(r["cell"], 0)))
    return out


def trends(curves: Curves, cell: str, directions: Mapping[str, str], *, alpha: float = 0.05,
           up_to: int | None = None) -> dict[str, dict[str, Any]]:
    """The convergence reading of ``cell``'s in-training evaluations, per key (up to step
    ``up_to`` when given), as :meth:`gantk.stats.Trend.to_dict` plus its sentence."""

    out = {}
    for key, per_seed in curves.get(cell, {}).items():
        if directions.get(key) not in ("min", "max"):
            continue
        cut = {s: {st: v for st, v in c.items() if up_to is None or st <= up_to}
               for s, c in per_seed.items()}
        t: Trend = trend({s: c for s, c in cut.items() if c}, better=directions[key], alpha=alpha)
        out[key] = {**t.to_dict(), "sentence": t.sentence()}
    return out


def trend_meaning(status: str) -> str:
    return {"improving": "still improving: not converged",
            "flat": "no trend detected over the last quarter: converged by this criterion",
            "worsening": "getting worse: past its best",
            "too few evaluations": "fewer than 3 evaluations in the last quarter",
            "too few seeds": "fewer than 2 seeds with a slope"}.get(status, status)


def fmt_num(x: float | None, scale: float | None = None) -> str:
    """A number at the precision its uncertainty justifies: two significant digits of ``scale``
    (a std or CI half-width), else four significant digits."""

    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if scale is not None and math.isfinite(scale) and scale > 0:
        decimals = max(0, 1 - math.floor(math.log10(scale)))
        return f"{x:.{min(decimals, 6)}f}"
    return f"{x:.4g}"
