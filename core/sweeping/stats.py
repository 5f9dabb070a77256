"""Paired comparisons of sweep cells over seeds (the trends of in-training evaluations are
:mod:`gantk.sweeping.trend`, re-exported here).

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

from .numbers import all_equal, fmt, fmt_ci, fmt_p, norm_direction, to_json
from .trend import Trend, last_k_mean, trend  # the trend half, kept importable from here

__all__ = ["MDE_POWER", "MIN_SEEDS", "PERMUTATION", "TESTS", "Comparison", "PairedResult", "Trend",
           "analyze", "compare", "holm", "last_k_mean", "minimal_detectable_effect", "paired",
           "trend"]

TESTS = {"t": "paired t", "wilcoxon": "Wilcoxon signed-rank",
         "permutation": "sign-flip permutation"}
PERMUTATION = TESTS["permutation"]
MIN_SEEDS = 3          # fewer paired seeds than this: verdict "too few seeds"
MDE_POWER = 0.8
_EXACT_MAX_N = 16      # exact sign-flip enumeration up to 2**16 sign patterns


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
    if all_equal(d):
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
    if n < 2 or all_equal(d):
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
        return to_json(asdict(self))

    def sentence(self) -> str:
        """One line: verdict, mean difference [CI], test, n, p (Holm), and for a null result the
        minimal detectable effect."""
        if self.n == 0:
            return f"{self.verdict}: no seed pairs with the baseline"
        ci = fmt_ci(self.ci_low, self.ci_high)
        text = f"{self.verdict}: {fmt(self.mean, True)}{ci}, {self.test}, n = {self.n}"
        if math.isfinite(self.p):
            text += f", p {fmt_p(self.p, self.alpha)}"
            if math.isfinite(self.p_adj):
                text += f" (Holm {fmt_p(self.p_adj, self.alpha).removeprefix('= ')})"
        if self.verdict == "too few seeds":
            text += f"; a verdict needs >= {MIN_SEEDS} paired seeds"
        elif self.verdict == "no difference detected":
            if math.isinf(self.mde):
                text += f"; {self.test} cannot detect any effect at n = {self.n}"
            elif math.isfinite(self.mde):
                text += f"; smallest detectable effect at n = {self.n}: {fmt(self.mde)}"
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
                         "better": norm_direction(better.get(metric)), "seeds": seeds, "d": d,
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
