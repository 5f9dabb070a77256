"""Where a metric's in-training evaluations are heading at the end of training: an OLS slope per
seed over the last part of training and a t interval over seeds (the convergence lines of a sweep
summary). Pure computation; scipy is imported on first use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .numbers import all_equal, fmt, fmt_ci, norm_direction, to_json


@dataclass(frozen=True)
class Trend:
    """Where a metric's in-training evaluations are heading at the end of training.

    ``window`` = (start_step, last_step) with start_step = start_fraction * last_step. Changes are
    OLS slopes times (last_step - start_step): the metric's change over the window ("per last
    quarter" by default), in metric units. ``per_seed[seed] = (change, ci_low, ci_high,
    n_points)`` (t CI on n_points - 2 df; NaN with < 3 points; the points of one run are
    autocorrelated, so these CIs are indicative only). ``change`` with ``[ci_low, ci_high]`` is the
    mean per-seed change with a t CI over seeds (independent runs: this is the valid inference).
    ``status``: "improving"/"worsening" when that CI lies wholly on the better/worse side of 0,
    else "flat"; "too few evaluations" (< 3 evaluation steps in the window) or "too few seeds"
    (< 2 seeds with a slope). ``best_step``: the step with the best mean over seeds (all steps).
    """

    status: str
    better: str
    window: tuple[float, float]
    per_seed: dict[int, tuple[float, float, float, int]]
    change: float
    ci_low: float
    ci_high: float
    n_seeds: int
    best_step: int | None
    start_fraction: float = 0.75
    alpha: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict; NaN/inf -> None, per_seed keyed by str(seed) with named fields."""
        out = to_json({k: v for k, v in asdict(self).items() if k != "per_seed"})
        out["per_seed"] = {str(s): to_json({"change": c, "ci_low": lo, "ci_high": hi, "n_points": k})
                           for s, (c, lo, hi, k) in self.per_seed.items()}
        return out

    def sentence(self) -> str:
        """One line, e.g. "improving: -0.08 per last quarter [-0.15, -0.01] (steps 7500-10000,
        5 seeds); best mean at step 9500"."""
        per = ("per last quarter" if abs(self.start_fraction - 0.75) < 1e-12
               else f"over the last {1 - self.start_fraction:.0%} of training")
        text = self.status
        if math.isfinite(self.change):
            text += f": {fmt(self.change, True)} {per}{fmt_ci(self.ci_low, self.ci_high)}"
        text += f" (steps {self.window[0]:g}-{self.window[1]:g}, {self.n_seeds} seeds)"
        best = f"; best mean at step {self.best_step}" if self.best_step is not None else ""
        return text + best


def trend(curves: Mapping[int, Mapping[int, float]], *, better: str, start_fraction: float = 0.75,
          alpha: float = 0.05) -> Trend:
    """Slope of a metric over the last part of training, per seed and across seeds.

    ``curves[seed][step]`` = evaluation of the metric at ``step`` (non-finite values are skipped).
    Uses every evaluation with step >= start_fraction * last_step (last_step over all seeds): per
    seed an OLS fit (``scipy.stats.linregress``), then the mean of the per-seed changes with a
    (1 - alpha) t interval over seeds. See :class:`Trend` for the fields and statuses.
    """
    from scipy import stats

    direction = norm_direction(better, allow_unknown=False)
    if not 0 <= start_fraction < 1:
        raise ValueError(f"start_fraction must be in [0, 1), got {start_fraction}")
    pts = {int(s): sorted((int(k), float(v)) for k, v in c.items() if math.isfinite(float(v)))
           for s, c in curves.items()}
    steps = sorted({k for p in pts.values() for k, _ in p})
    nan = float("nan")
    last = steps[-1] if steps else 0
    start = start_fraction * last
    span = last - start
    means: dict[int, list[float]] = {}
    for p in pts.values():
        for k, v in p:
            means.setdefault(k, []).append(v)
    pick = min if direction == "lower" else max
    best_step = pick(sorted(means), key=lambda k: float(np.mean(means[k]))) if means else None
    common = dict(better=direction, window=(float(start), float(last)), best_step=best_step,
                  start_fraction=start_fraction, alpha=alpha)
    if sum(k >= start for k in steps) < 3:
        return Trend(status="too few evaluations", per_seed={}, change=nan, ci_low=nan, ci_high=nan,
                     n_seeds=0, **common)
    per_seed: dict[int, tuple[float, float, float, int]] = {}
    for seed, p in pts.items():
        x = np.array([k for k, _ in p if k >= start], dtype=float)
        y = np.array([v for k, v in p if k >= start], dtype=float)
        if x.size < 2:
            per_seed[seed] = (nan, nan, nan, int(x.size))
            continue
        fit = stats.linregress(x, y)
        lo = hi = nan
        if x.size >= 3:
            half = stats.t.ppf(1 - alpha / 2, x.size - 2) * fit.stderr
            lo, hi = (fit.slope - half) * span, (fit.slope + half) * span
        per_seed[seed] = (float(fit.slope * span), float(lo), float(hi), int(x.size))
    ch = np.array([v[0] for v in per_seed.values() if math.isfinite(v[0])])
    if ch.size < 2:
        change = float(ch[0]) if ch.size else nan
        return Trend(status="too few seeds", per_seed=per_seed, change=change, ci_low=nan,
                     ci_high=nan, n_seeds=int(ch.size), **common)
    change = float(ch.mean())
    if all_equal(ch):
        lo = hi = change
    else:
        ci = stats.ttest_1samp(ch, 0.0).confidence_interval(confidence_level=1 - alpha)
        lo, hi = float(ci.low), float(ci.high)
    good_side = (hi < 0) if direction == "lower" else (lo > 0)
    bad_side = (lo > 0) if direction == "lower" else (hi < 0)
    status = "improving" if good_side else "worsening" if bad_side else "flat"
    return Trend(status=status, per_seed=per_seed, change=change, ci_low=lo, ci_high=hi,
                 n_seeds=int(ch.size), **common)


def last_k_mean(curve: Mapping[int, float], k: int) -> float:
    """Mean of the last ``k`` evaluations of one run (by step): a less noisy score than the final
    checkpoint alone. NaN when fewer than k evaluations exist; a non-finite evaluation among the
    last k makes the result non-finite (a diverged run is not silently averaged away)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(curve) < k:
        return float("nan")
    return float(np.mean([float(curve[s]) for s in sorted(curve)[-k:]]))
