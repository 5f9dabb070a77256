"""gantk.sweeping.stats: paired comparisons over seeds, Holm families, MDE, trends. Monte-Carlo tests use
fixed numpy Generators (deterministic) and bounds of 3 Monte-Carlo standard errors."""

from __future__ import annotations

import gc
import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from gantk.sweeping.stats import Comparison, analyze, compare, holm, last_k_mean, paired, trend

ALPHA = 0.05
SIMS = 2000
MC_SE = math.sqrt(ALPHA * (1 - ALPHA) / SIMS)


@pytest.fixture
def fast_gc():
    """statsmodels' Holm calls gc.collect() on every call; freezing the (large, static) heap of
    imported modules makes that cheap during the Monte-Carlo loops. Semantics are unchanged."""
    gc.freeze()
    yield
    gc.unfreeze()


def sweep(rng, cells, metrics, n=5, effects=None, seed_sd=1.0, run_sd=0.3):
    """values[cell][metric][seed]: shared per-seed effect plus independent run noise."""
    seed_effect = rng.normal(0, seed_sd, size=(len(metrics), n))
    effects = effects or {}
    return {c: {m: {s: float(seed_effect[j, s] + effects.get((c, m), 0.0) + rng.normal(0, run_sd))
                    for s in range(n)} for j, m in enumerate(metrics)} for c in cells}


# -- known values ---------------------------------------------------------------------------------

def test_paired_drops_missing_and_non_finite():
    base = {1: 1.0, 2: float("nan"), 3: 3.0, 4: 4.0, 6: 0.0}
    cell = {4: 6.0, 1: 2.0, 2: 5.0, 3: float("inf"), 5: 7.0}
    seeds, d = paired(base, cell)
    assert seeds == [1, 4]
    np.testing.assert_array_equal(d, [1.0, 2.0])


def test_paired_t_on_hand_checkable_example():
    rng = np.random.default_rng(0)
    a = rng.normal(10, 2, size=5)
    b = a + np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    res = compare(b - a, test="t")
    half = stats.t.ppf(0.975, 4) * math.sqrt(2.5) / math.sqrt(5)   # sd of 1..5 is sqrt(2.5)
    assert res.mean == pytest.approx(3.0)
    assert (res.ci_low, res.ci_high) == pytest.approx((3 - half, 3 + half))
    assert (res.ci_low, res.ci_high) == pytest.approx((1.0368, 4.9632), abs=1e-4)
    assert res.p == pytest.approx(stats.ttest_rel(b, a).pvalue)
    assert res.p == pytest.approx(2 * stats.t.sf(3 / math.sqrt(0.5), 4))
    assert res.test == "paired t"
    lo90 = compare(b - a, alpha=0.10).ci_low
    assert lo90 == pytest.approx(3 - stats.t.ppf(0.95, 4) * math.sqrt(0.5))


def test_wilcoxon_and_permutation_exact_p():
    d = [1.0, 2.0, 3.0, 4.0, 5.0]   # all positive: only 2 of 2**5 sign patterns are as extreme
    assert compare(d, test="wilcoxon").p == pytest.approx(2 / 32)
    assert compare(d, test="permutation").p == pytest.approx(2 / 32)
    d = np.array([1.0, 2.0, 3.0, -1.0, 0.5, 2.5])
    flips = np.array(list(itertools.product([-1, 1], repeat=d.size)))
    expected = np.mean(np.abs((flips * d).mean(axis=1)) >= abs(d.mean()) - 1e-12)
    res = compare(d, test="permutation")
    assert res.p == pytest.approx(expected)
    assert res.test == "sign-flip permutation"
    t_res = compare(d)   # CI: the t interval of the mean, whatever the test
    assert (res.ci_low, res.ci_high) == (t_res.ci_low, t_res.ci_high)
    with pytest.raises(ValueError):
        compare(d, test="anova")


def test_degenerate_differences():
    same = compare([2.0] * 5)
    assert same.test == "sign-flip permutation" and same.p == pytest.approx(2 / 32)
    assert same.ci_low == same.ci_high == 2.0
    zero = compare([0.0] * 4)
    assert zero.p == 1.0 and zero.mean == 0.0 and zero.ci_low == zero.ci_high == 0.0
    one = compare([0.7])
    assert one.mean == 0.7 and math.isnan(one.p) and math.isnan(one.ci_low)
    assert all(math.isnan(x) for x in compare([])[:4])
    # six identical improvements: exact p = 2/64 < 0.05, so the verdict is "better"
    base = {s: 10.0 + s for s in range(6)}
    vals = {"b": {"fid": base}, "m": {"fid": {s: v - 0.5 for s, v in base.items()}}}
    (c,) = analyze(vals, baseline="b", primary=["fid"], better={"fid": "lower"})
    assert (c.verdict, c.p, c.k_better, c.test) == ("better", pytest.approx(2 / 64), 6,
                                                    "sign-flip permutation")
    vals["m"]["fid"] = dict(base)
    (c,) = analyze(vals, baseline="b", primary=["fid"], better={"fid": "lower"})
    assert (c.verdict, c.p, c.k_better) == ("no difference detected", 1.0, 0)


def test_too_few_seeds_and_nan_excluded_from_holm():
    vals = {"b": {"fid": {0: 1.0, 1: 2.0, 2: 3.0}, "is": {0: 1.0, 1: 2.0}},
            "m": {"fid": {0: 0.0, 1: 1.5, 2: float("nan")}, "is": {0: 1.0, 5: 3.0}}}
    fid, is_ = analyze(vals, baseline="b", primary=["fid"], better={"fid": "lower", "is": "higher"})
    assert (fid.n, fid.seeds, fid.diffs) == (2, (0, 1), (-1.0, -0.5))
    assert fid.verdict == "too few seeds" and math.isfinite(fid.p) and fid.p_adj == fid.p
    assert is_.n == 1 and is_.verdict == "too few seeds"
    assert math.isnan(is_.p) and math.isnan(is_.p_adj) and math.isnan(is_.mde)
    assert "too few seeds" in is_.sentence()


def test_direction_flips_verdict():
    rng = np.random.default_rng(1)
    base = {s: float(rng.normal()) for s in range(6)}
    cell = {s: v - 2.0 + 0.1 * rng.normal() for s, v in base.items()}   # clearly lower
    vals = {"b": {"x": base}, "m": {"x": cell}}
    got = {d: analyze(vals, baseline="b", primary=["x"], better={"x": d})[0]
           for d in ("lower", "higher", "min", "max")}
    assert got["lower"].verdict == got["min"].verdict == "better"
    assert got["higher"].verdict == got["max"].verdict == "worse"
    assert got["lower"].k_better == 6 and got["higher"].k_better == 0
    unknown = analyze(vals, baseline="b", primary=["x"], better={})[0]
    assert (unknown.verdict, unknown.k_better, unknown.better) == ("differs", 0, "")
    with pytest.raises(ValueError):
        analyze(vals, baseline="b", primary=["x"], better={"x": "up"})


def test_analyze_families_are_holm_of_raw_p_and_output_is_json():
    rng = np.random.default_rng(2)
    cells, metrics = ["b", "m1", "m2", "m3"], ["fid", "is", "kid", "prec"]
    vals = sweep(rng, cells, metrics, n=5, effects={("m1", "fid"): -0.6, ("m2", "is"): 0.4})
    vals["m3"].pop("kid")
    better = {"fid": "lower", "is": "higher"}
    out = analyze(vals, baseline="b", primary=["fid", "is"], better=better)
    assert len(out) == 3 * 4 - 1 and all(isinstance(c, Comparison) for c in out)
    assert [(c.cell, c.metric) for c in out][:4] == [("m1", m) for m in metrics]
    for fam, m in (("primary", 6), ("secondary", 5)):
        rows = [c for c in out if c.family == fam]
        assert len(rows) == m and all(c.primary == (fam == "primary") for c in rows)
        expected = multipletests([c.p for c in rows], method="holm")[1]
        np.testing.assert_allclose([c.p_adj for c in rows], expected)
        # MDE at Bonferroni level alpha/m from the observed sd of the diffs
        c = rows[0]
        d_star = TTestPower().solve_power(effect_size=None, nobs=5, alpha=ALPHA / m, power=0.8,
                                          alternative="two-sided")
        assert c.mde == pytest.approx(np.std(c.diffs, ddof=1) * d_star, rel=1e-6)
    for c in out:   # verdicts follow the Holm-adjusted p, not the raw p
        assert (c.verdict in ("better", "worse", "differs")) == (c.p_adj < ALPHA), c
    assert any(c.p < ALPHA <= c.p_adj for c in out)   # the correction changed something here
    best = next(c for c in out if (c.cell, c.metric) == ("m1", "fid"))
    text = best.sentence()
    assert text.startswith(f"{best.verdict}: ") and "paired t, n = 5" in text and "Holm" in text
    json.dumps([c.to_dict() for c in out], allow_nan=False)
    nd = next(c for c in out if c.verdict == "no difference detected")
    assert "smallest detectable effect at n = 5" in nd.sentence()


def test_holm_matches_statsmodels_and_passes_nan():
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    out = holm([0.01, float("nan"), 0.04])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    assert holm([]) == [] and all(math.isnan(x) for x in holm([float("nan")]))


# -- calibration and power ------------------------------------------------------------------------

def test_null_false_positive_rate_through_analyze(fast_gc):
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(SIMS):
        vals = sweep(rng, ["b", "m"], ["fid"])
        (c,) = analyze(vals, baseline="b", primary=["fid"], better={"fid": "lower"})
        hits += c.verdict in ("better", "worse")
    rate = hits / SIMS
    assert ALPHA - 3 * MC_SE <= rate <= ALPHA + 3 * MC_SE, rate   # exact test: neither way off


def _null_p(rng, k, n=5, shared_baseline=True):
    """(SIMS, k) raw paired-t p-values of k null comparisons per sweep (vectorised)."""
    seed = rng.normal(0, 1, size=(SIMS, 1, n))
    base = seed + rng.normal(0, 0.3, size=(SIMS, 1, n)) if shared_baseline else 0.0
    cells = seed + rng.normal(0, 0.3, size=(SIMS, k, n))
    base = base if shared_baseline else seed + rng.normal(0, 0.3, size=(SIMS, k, n))
    return stats.ttest_1samp(cells - base, 0.0, axis=2).pvalue


@pytest.mark.parametrize("k, label", [(3, "3 cells x 1 primary metric, one baseline"),
                                      (8, "1 cell x 8 secondary metrics")])
def test_holm_family_wise_rate(fast_gc, k, label):
    rng = np.random.default_rng(4 + k)
    p = _null_p(rng, k, shared_baseline=(k == 3))
    fwer = np.mean([min(holm(row)) < ALPHA for row in p])
    assert fwer <= ALPHA + 3 * MC_SE, (label, fwer)
    # without the correction the same simulation is clearly anti-conservative
    assert np.mean(p.min(axis=1) < ALPHA) > ALPHA + 3 * MC_SE


def _rejection_rate(rng, effect, sd, n, alpha, sims=SIMS):
    hits = sum(compare(rng.normal(effect, sd, size=n)).p < alpha for _ in range(sims))
    return hits / sims


def test_power_matches_ttestpower():
    rng = np.random.default_rng(5)
    predicted = TTestPower().power(effect_size=1.2, nobs=8, alpha=ALPHA, alternative="two-sided")
    rate = _rejection_rate(rng, effect=1.2 * 0.5, sd=0.5, n=8, alpha=ALPHA)
    se = math.sqrt(predicted * (1 - predicted) / SIMS)
    assert abs(rate - predicted) <= 3 * se, (rate, predicted)


@pytest.mark.parametrize("family_size", [1, 3])
def test_mde_has_power_080(family_size):
    rng = np.random.default_rng(6 + family_size)
    n, sd = 6, 0.4
    metrics = [f"m{j}" for j in range(family_size)]
    vals = sweep(rng, ["b", "x"], metrics, n=n, run_sd=sd)
    c = analyze(vals, baseline="b", primary=metrics, better={})[0]
    s = float(np.std(c.diffs, ddof=1))
    assert 0 < c.mde < math.inf
    rate = _rejection_rate(rng, effect=c.mde, sd=s, n=n, alpha=ALPHA / family_size)
    assert abs(rate - 0.8) <= 3 * math.sqrt(0.8 * 0.2 / SIMS), rate
    perm = analyze(vals, baseline="b", primary=metrics, better={}, test="permutation")[0]
    if family_size == 1:   # smallest exact p at n = 6 is 2/64 < 0.05 ...
        assert math.isfinite(perm.mde)
    else:                  # ... but > 0.05/3: no effect is detectable
        assert perm.mde == math.inf and "cannot detect any effect at n = 6" in perm.sentence()


# -- trends ---------------------------------------------------------------------------------------

STEPS = range(0, 10001, 250)   # 41 evaluations; 11 in the last quarter (7500..10000)


def curves(rng, slope_per_quarter, n_seeds=5, noise=0.3):
    return {s: {k: 30.0 + s + slope_per_quarter * k / 2500
                + rng.normal(0, noise) for k in STEPS} for s in range(n_seeds)}


def test_trend_planted_decrease_is_improving_and_covered():
    rng = np.random.default_rng(7)
    cv = curves(rng, -1.0)
    c = cv[4]
    t = trend(cv, better="lower")
    assert t.status == "improving" and t.window == (7500.0, 10000.0) and t.n_seeds == 5
    assert sorted(t.per_seed) == list(range(5)) and all(v[3] == 11 for v in t.per_seed.values())
    assert all(lo <= ch <= hi for ch, lo, hi, _ in t.per_seed.values())
    fit = stats.linregress(list(STEPS)[-11:], [c[k] for k in list(STEPS)[-11:]])   # seed 4 by hand
    half = stats.t.ppf(0.975, 11 - 2) * fit.stderr * 2500
    assert t.per_seed[4][:3] == pytest.approx((fit.slope * 2500, fit.slope * 2500 - half,
                                               fit.slope * 2500 + half))
    mean_ci = stats.ttest_1samp([v[0] for v in t.per_seed.values()], 0).confidence_interval()
    assert (t.change, t.ci_low, t.ci_high) == pytest.approx(
        (np.mean([v[0] for v in t.per_seed.values()]), mean_ci.low, mean_ci.high))
    assert t.best_step is not None and t.best_step >= 9000
    assert t.sentence().startswith("improving: -") and "per last quarter" in t.sentence()
    json.dumps(t.to_dict(), allow_nan=False)
    assert trend(curves(rng, -1.0), better="higher").status == "worsening"
    assert trend(curves(rng, +1.0), better="max").status == "improving"
    # the across-seeds CI covers the planted change (-1.0 per quarter) at about its 95% level
    runs = [trend(curves(rng, -1.0), better="lower") for _ in range(100)]
    assert all(r.status == "improving" for r in runs)
    assert sum(r.ci_low <= -1.0 <= r.ci_high for r in runs) >= 88   # nominal 95 of 100
    assert abs(np.mean([r.change for r in runs]) + 1.0) < 0.05     # unbiased


def test_trend_pure_noise_is_flat():
    rng = np.random.default_rng(8)
    flat = sum(trend(curves(rng, 0.0), better="lower").status == "flat" for _ in range(200))
    assert flat >= 180


def test_trend_too_few_evaluations_and_seeds():
    t = trend({0: {0: 3.0, 5000: 2.0, 10000: 1.0}, 1: {0: 3.0, 5000: 2.5, 10000: 1.5}},
              better="lower")
    assert t.status == "too few evaluations" and math.isnan(t.change) and t.best_step == 10000
    t = trend({0: {k: -k / 100 for k in STEPS}}, better="lower")
    assert t.status == "too few seeds" and t.change == pytest.approx(-25.0)
    assert t.per_seed[0][1] == pytest.approx(-25.0)   # exact line: zero-width per-seed CI
    with pytest.raises(ValueError):
        trend({0: {1: 1.0}}, better="")


def test_last_k_mean():
    curve = {300: 2.0, 0: 5.0, 200: 3.0, 100: 4.0}
    assert last_k_mean(curve, 2) == pytest.approx(2.5)
    assert last_k_mean(curve, 4) == pytest.approx(3.5)
    assert last_k_mean(curve, 1) == 2.0
    assert math.isnan(last_k_mean(curve, 5))
    assert math.isnan(last_k_mean({**curve, 400: float("nan")}, 2))
    with pytest.raises(ValueError):
        last_k_mean(curve, 0)
