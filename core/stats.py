"""Paired comparisons of sweep cells over seeds, and trends of in-training evaluations.

Pure computation (numpy, scipy.stats, statsmodels; the latter two are imported on first use so
``import gantk.stats`` stays cheap). The protocol:

* Runs of the same seed in two cells share initialisation, data order and latents, so a cell is
  compared with the baseline through the per-seed **paired differences** ``d_s = cell_s -
  baseline_s`` (seeds present and finite in both), never through two independent samples.
* The default test is the paired t-test of ``mean(d) = 0``; its (1 - alpha) confidence interval
  is the t interval of the mean difference. Alternatives: the Wilcoxon signed-rank test and the
  exact sign-flip permutation test of the mean.
* Multiplicity is controlled by Holm's step-down procedure within two families per sweep:
  ``primary`` (every non-baseline cell x every primary metric) and ``secondary`` (every other
  cell x metric pair). The family-wise error rate of each family is at most alpha.
* A verdict needs n >= 3 paired seeds. "no difference detected" is not evidence of equivalence:
  each comparison reports the minimal detectable effect (MDE) at its n.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

TESTS = {"t": "paired t", "wilcoxon": "Wilcoxon signed-rank",
         "permutation": "sign-flip permutation"}
PERMUTATION = TESTS["permutation"]
MIN_SEEDS = 3          # fewer paired seeds than this: verdict "too few seeds"
MDE_POWER = 0.8
_EXACT_MAX_N = 16      # exact sign-flip enumeration up to 2**16 sign patterns
_DIRECTIONS = {"lower": "lower", "min": "lower", "higher": "higher", "max": "higher", "": ""}


def _direction(better: str | None, *, allow_unknown: bool = True) -> str:
    key = (better or "").strip().lower()
    if key not in _DIRECTIONS or (not allow_unknown and not _DIRECTIONS[key]):
        raise ValueError("better must be 'lower' or 'higher' ('min'/'max' accepted), "
                         f"got {better!r}")
    return _DIRECTIONS[key]


def _json(x: Any) -> Any:
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, tuple | list):
        return [_json(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _json(v) for k, v in x.items()}
    return x


def _fmt(x: float, signed: bool = False) -> str:
    if not math.isfinite(x):
        return "n/a"
    s = np.format_float_positional(float(x), precision=3, unique=False, fractional=False, trim="-")
    return ("+" + s if signed and x >= 0 else s)


def _fmt_ci(lo: float, hi: float) -> str:
    return f" [{_fmt(lo, True)}, {_fmt(hi, True)}]" if math.isfinite(lo) else ""


def _fmt_p(p: float) -> str:
    return "n/a" if not math.isfinite(p) else ("< 0.001" if p < 0.001 else f"= {p:.2g}")


def paired(baseline: Mapping[int, float],
           cell: Mapping[int, float]) -> tuple[list[int], np.ndarray]:
    """Pair two cells' runs by seed.

    Returns the sorted seeds whose value is present and finite in both mappings, and the paired
    differences ``cell[s] - baseline[s]`` in that order (a float array; empty when none pair).
    """
    seeds = sorted(s for s in set(baseline) & set(cell)
                   if math.isfinite(float(baseline[s])) and math.isfinite(float(cell[s])))
    return seeds, np.array([float(cell[s]) - float(baseline[s]) for s in seeds], dtype=float)


class PairedResult(NamedTuple):
    """Location estimate of paired differences: mean, (1 - alpha) CI, two-sided p, test used."""

    mean: float
    ci_low: float
    ci_high: float
    p: float
    test: str


def _all_equal(d: np.ndarray) -> bool:
    return bool(np.ptp(d) <= 8 * np.finfo(float).eps * np.max(np.abs(d)))


def _sign_flip_p(d: np.ndarray) -> float:
    from scipy import stats

    exact = d.size <= _EXACT_MAX_N
    res = stats.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), vectorized=True,
                                 permutation_type="samples", alternative="two-sided",
                                 n_resamples=np.inf if exact else 20_000,
                                 rng=None if exact else np.random.default_rng(0))
    return float(res.pvalue)


def compare(diffs: Iterable[float], *, test: str = "t", alpha: float = 0.05) -> PairedResult:
    """Test H0: the mean paired difference is 0, two-sided, and estimate it with a (1 - alpha) CI.

    ``test``:

    * ``"t"``: one-sample t-test of the differences (= paired t-test, ``scipy.stats.ttest_1samp``);
      the CI is its t interval ``mean +- t_{1-alpha/2, n-1} * sd / sqrt(n)``.
    * ``"wilcoxon"``: Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, exact null distribution
      where scipy uses it, i.e. small n without zeros/ties; zero differences are dropped). It tests
      symmetry about 0, not the mean; the reported CI is still the t interval of the mean, so the
      two can disagree. With n < 6 non-zero differences its smallest two-sided p is 2 / 2**n > 0.05.
    * ``"permutation"``: sign-flip permutation test of the mean (``scipy.stats.permutation_test``,
      ``permutation_type="samples"``), exact (all 2**n sign patterns) for n <= 16, otherwise 20 000
      random patterns with a fixed generator. Smallest p is 2 / 2**n (0.0625 at n = 5). CI: the
      t interval of the mean.

    Non-finite differences are dropped. Degenerate cases: n = 0 gives all NaN; n = 1 gives the
    mean with NaN CI and p. When all differences are equal (sd = 0) the t statistic is undefined:
    whatever ``test``, p comes from the exact sign-flip test (p = 1 when they are all zero; test
    name "sign-flip permutation") and the CI collapses to the point.
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {sorted(TESTS)}, got {test!r}")
    d = np.asarray(list(diffs) if not isinstance(diffs, np.ndarray) else diffs, dtype=float).ravel()
    d = d[np.isfinite(d)]
    n, nan = d.size, float("nan")
    if n == 0:
        return PairedResult(nan, nan, nan, nan, TESTS[test])
    mean = float(d.mean())
    if n == 1:
        return PairedResult(mean, nan, nan, nan, TESTS[test])
    if _all_equal(d):
        p = 1.0 if mean == 0 else _sign_flip_p(d)
        return PairedResult(mean, mean, mean, p, PERMUTATION)
    from scipy import stats

    res = stats.ttest_1samp(d, 0.0)
    ci = res.confidence_interval(confidence_level=1 - alpha)
    if test == "t":
        p = float(res.pvalue)
    elif test == "wilcoxon":
        p = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    else:
        p = _sign_flip_p(d)
    return PairedResult(mean, float(ci.low), float(ci.high), p, TESTS[test])


def _shift_sign(d: np.ndarray, test: str) -> float:
    """Direction of the effect the test detected: the mean's sign, or for Wilcoxon the sign of
    (positive rank sum - negative rank sum), which can differ from the mean's under outliers."""
    if test != TESTS["wilcoxon"]:
        return float(np.sign(d.mean())) if d.size else 0.0
    from scipy import stats

    nz = d[d != 0]
    ranks = stats.rankdata(np.abs(nz))
    return float(np.sign(ranks[nz > 0].sum() - ranks[nz < 0].sum()))


def holm(pvalues: Iterable[float]) -> list[float]:
    """Holm step-down adjusted p-values (``statsmodels...multipletests(method="holm")``).

    NaN entries are not part of the family (they do not count in m) and come back as NaN; the
    order of the input is kept. Rejecting where the adjusted p < alpha controls the family-wise
    error rate at alpha under any dependence between the tests.
    """
    p = np.asarray(list(pvalues), dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        from statsmodels.stats.multitest import multipletests

        out[ok] = multipletests(p[ok], method="holm")[1]
    return [float(x) for x in out]


@functools.lru_cache(maxsize=512)
def _mde_effect(n: int, alpha: float) -> float:
    """Standardised effect (mean / sd) a two-sided one-sample t-test detects with power 0.8."""
    import warnings

    from statsmodels.stats.power import TTestPower

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            es = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=MDE_POWER,
                                          alternative="two-sided")
        return float(np.squeeze(es))
    except Exception:  # solver failure (tiny n and alpha): report the MDE as unknown
        return float("nan")


def minimal_detectable_effect(diffs: np.ndarray, alpha: float, test: str = TESTS["t"]) -> float:
    """Smallest |mean difference| detected with power 0.8 at two-sided level ``alpha`` and this n.

    Computed for the t-test from the observed sd of the differences: ``sd * d*`` with ``d*`` from
    ``TTestPower().solve_power(nobs=n, power=0.8)``; an approximation for Wilcoxon and the
    permutation test, and ``inf`` where those cannot reach p < alpha at all (2 / 2**n >= alpha).
    NaN when n < 2 or sd = 0. Depends on the observed sd, so it is itself an estimate.
    """
    d = np.asarray(diffs, dtype=float)
    n = d.size
    if n < 2 or _all_equal(d):
        return float("nan")
    if test != TESTS["t"] and 2.0 / 2 ** int(np.count_nonzero(d)) >= alpha:
        return float("inf")
    return float(d.std(ddof=1)) * _mde_effect(n, float(alpha))


@dataclass(frozen=True)
class Comparison:
    """One cell against the baseline on one metric, over the seeds they share.

    ``diffs`` are cell - baseline per seed (order of ``seeds``); ``mean`` with ``[ci_low,
    ci_high]`` is the (1 - alpha) CI of the mean paired difference; ``p`` is the raw two-sided p of
    ``test`` and ``p_adj`` the Holm-adjusted p within ``family``; ``k_better`` counts seeds on which
    the cell is better; ``mde`` is the minimal detectable |mean difference| (power 0.8) at level
    alpha / m, m = size of the Holm family (Holm's strictest threshold, so conservative).
    """

    metric: str
    cell: str
    baseline: str
    primary: bool
    better: str
    test: str
    n: int
    seeds: tuple[int, ...]
    diffs: tuple[float, ...]
    mean: float
    ci_low: float
    ci_high: float
    p: float
    p_adj: float
    family: str
    k_better: int
    mde: float
    verdict: str
    alpha: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of all fields; NaN and +-inf become None, tuples become lists."""
        return _json(asdict(self))

    def sentence(self) -> str:
        """One line: verdict, mean difference [CI], test, n, p (Holm), and for a null result the
        minimal detectable effect."""
        if self.n == 0:
            return f"{self.verdict}: no seed pairs with the baseline"
        ci = _fmt_ci(self.ci_low, self.ci_high)
        text = f"{self.verdict}: {_fmt(self.mean, True)}{ci}, {self.test}, n = {self.n}"
        if math.isfinite(self.p):
            text += f", p {_fmt_p(self.p)}"
            if math.isfinite(self.p_adj):
                text += f" (Holm {_fmt_p(self.p_adj).removeprefix('= ')})"
        if self.verdict == "too few seeds":
            text += f"; a verdict needs >= {MIN_SEEDS} paired seeds"
        elif self.verdict == "no difference detected":
            if math.isinf(self.mde):
                text += f"; {self.test} cannot detect any effect at n = {self.n}"
            elif math.isfinite(self.mde):
                text += f"; smallest detectable effect at n = {self.n}: {_fmt(self.mde)}"
        return text


def analyze(values: Mapping[str, Mapping[str, Mapping[int, float]]], *, baseline: str,
            primary: Sequence[str], better: Mapping[str, str], test: str = "t",
            alpha: float = 0.05) -> list[Comparison]:
    """Compare every non-baseline cell with ``baseline`` on every metric both have.

    ``values[cell][metric][seed]`` is one run's final score. Each comparison uses the paired
    differences over the seeds finite in both cells (:func:`paired`) and :func:`compare`. Holm is
    applied per family: ``"primary"`` = all (cell, metric in ``primary``) pairs, ``"secondary"`` =
    all other pairs; comparisons with NaN p (n < 2) are left out of the family (p_adj NaN).

    ``better[metric]`` is ``"lower"`` or ``"higher"`` (``"min"``/``"max"`` accepted); a metric
    without a direction is still tested, with verdict "differs" instead of better/worse and
    k_better = 0. Verdict: n < 3 -> "too few seeds"; p_adj < alpha -> "better"/"worse" (or
    "differs") by the direction of the detected shift; else "no difference detected".
    Comparisons come in the order of ``values`` (cells) then of each cell's metrics.
    """
    if baseline not in values:
        raise ValueError(f"baseline cell {baseline!r} is not among the cells {sorted(values)}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {sorted(TESTS)}, got {test!r}")
    primary_set = set(primary)
    rows: list[dict[str, Any]] = []
    for cell, metrics in values.items():
        if cell == baseline:
            continue
        for metric, runs in metrics.items():
            if metric not in values[baseline]:
                continue
            seeds, d = paired(values[baseline][metric], runs)
            res = compare(d, test=test, alpha=alpha)
            rows.append({"metric": metric, "cell": cell, "primary": metric in primary_set,
                         "better": _direction(better.get(metric)), "seeds": seeds, "d": d,
                         "res": res})
    adjusted = [float("nan")] * len(rows)
    sizes: dict[bool, int] = {}
    for fam in (True, False):
        idx = [i for i, r in enumerate(rows) if r["primary"] is fam]
        sizes[fam] = sum(math.isfinite(rows[i]["res"].p) for i in idx)
        for i, pa in zip(idx, holm(rows[i]["res"].p for i in idx)):
            adjusted[i] = pa
    out = []
    for r, p_adj in zip(rows, adjusted):
        res, d, direction = r["res"], r["d"], r["better"]
        n = int(d.size)
        sign = {"lower": -1.0, "higher": 1.0}.get(direction, 0.0)
        k_better = int(np.sum(sign * d > 0)) if sign else 0
        if n < MIN_SEEDS:
            verdict = "too few seeds"
        elif math.isfinite(p_adj) and p_adj < alpha:
            shift = _shift_sign(d, res.test)
            verdict = ("differs" if not sign or not shift
                       else "better" if shift == sign else "worse")
        else:
            verdict = "no difference detected"
        mde = minimal_detectable_effect(d, alpha / max(sizes[r["primary"]], 1), res.test)
        out.append(Comparison(
            metric=r["metric"], cell=r["cell"], baseline=baseline, primary=r["primary"],
            better=direction, test=res.test, n=n, seeds=tuple(int(s) for s in r["seeds"]),
            diffs=tuple(float(x) for x in d), mean=res.mean, ci_low=res.ci_low, ci_high=res.ci_high,
            p=res.p, p_adj=p_adj, family="primary" if r["primary"] else "secondary",
            k_better=k_better, mde=mde, verdict=verdict, alpha=alpha))
    return out


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
        out = _json({k: v for k, v in asdict(self).items() if k != "per_seed"})
        out["per_seed"] = {str(s): _json({"change": c, "ci_low": lo, "ci_high": hi, "n_points": k})
                           for s, (c, lo, hi, k) in self.per_seed.items()}
        return out

    def sentence(self) -> str:
        """One line, e.g. "improving: -0.08 per last quarter [-0.15, -0.01] (steps 7500-10000,
        5 seeds); best mean at step 9500"."""
        per = ("per last quarter" if abs(self.start_fraction - 0.75) < 1e-12
               else f"over the last {1 - self.start_fraction:.0%} of training")
        text = self.status
        if math.isfinite(self.change):
            text += f": {_fmt(self.change, True)} {per}{_fmt_ci(self.ci_low, self.ci_high)}"
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

    direction = _direction(better, allow_unknown=False)
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
    if _all_equal(ch):
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
