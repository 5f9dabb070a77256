"""KID with torch against clean-fid's ``kernel_distance``, alone and inside a whole evaluation.

    python benchmarks/kid_speed.py                  # digits 16 px, n = 5,000, 5 rounds
    python benchmarks/kid_speed.py --stacked --n 10000 --rounds 2

Two arms, the same features, the same subsets (seed 0), alternating round by round in this one
process so that the load of a shared machine falls on both alike:

* ``clean-fid``: what gantk did before issue 31: ``cleanfid.fid.kernel_distance`` on float32
  copies of the features after ``np.random.seed(seed)``;
* ``torch``: ``gantk.metrics.kid.kid`` (float64, each block of pairs by the cheaper of its two
  routes).

Part 1 times KID alone on the evaluation's own features (plus clean-fid on float64 features, the
value both should equal). Part 2 runs ``evaluate`` end to end at ``n`` with every default digits
metric (``fid, kid, prdc, jsd, is, modes``) on the stand-in generator of metrics_speed.py, with
the reference features cached (as a second ``gantk eval`` finds them), once with each KID. It
prints CPU time (process, all threads) and wall time, the median of each arm, the ratio
clean-fid / torch of the medians and the median of the per-round ratios (> 1: torch is faster),
and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_speed import StandInPipeline  # noqa: E402

import gantk.metrics.fid as fid_module  # noqa: E402
from gantk.metrics.base import as_float64  # noqa: E402
from gantk.metrics.evaluate import default_metrics, evaluate  # noqa: E402
from gantk.metrics.kid import kid as torch_kid  # noqa: E402
from gantk.metrics.kid import routes  # noqa: E402


def clean_fid_kid(real, fake, *, num_subsets=100, max_subset_size=1000, seed=0, dtype=np.float32):
    """gantk's KID before issue 31: clean-fid's function on float32 copies, seeded."""
    from cleanfid import fid as cfid

    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return float(cfid.kernel_distance(as_float64(real).astype(dtype),
                                          as_float64(fake).astype(dtype),
                                          num_subsets=num_subsets, max_subset_size=max_subset_size))
    finally:
        np.random.set_state(state)


def timed(fn, *args, **kwargs):
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w, time.process_time() - c


def report(name: str, times: dict[str, list[tuple[float, float]]]) -> None:
    med = {arm: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
           for arm, ts in times.items()}
    for arm, (cpu, wall) in med.items():
        print(f"  {name} {arm:>10}: median {cpu:6.2f} s CPU, {wall:6.2f} s wall")
    a, b = med["clean-fid"], med["torch"]
    paired = statistics.median(x[0] / y[0] for x, y in zip(times["clean-fid"], times["torch"]))
    print(f"  {name} ratio clean-fid / torch: {a[0] / b[0]:.2f}x CPU, {a[1] / b[1]:.2f}x wall "
          f"(medians); median of the per-round CPU ratios {paired:.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--stacked", action="store_true", help="stacked digits (192-d features)")
    args = ap.parse_args()
    os.environ["GANTK_CACHE_DIR"] = tempfile.mkdtemp(prefix="gantk-kid-bench-")
    pipe = StandInPipeline(args.stacked, n_real=args.n)
    metrics = default_metrics(pipe.data_info, "digits")
    print(f"KID: clean-fid vs torch, {'stacked ' if args.stacked else ''}digits 16 px, n = "
          f"{args.n}, {args.rounds} rounds, {os.cpu_count()} cores, load average at start "
          f"{os.getloadavg()[0]:.1f}")

    # the features evaluate scores, and a first evaluate that fills the reference cache
    captured = {}

    def capture(real, fake, **kw):
        captured["real"], captured["fake"] = real, fake
        return torch_kid(real, fake, **kw)

    fid_module.kid = capture
    pipe.gen.manual_seed(0)
    first = evaluate(pipe, metrics, n=args.n, feature_net="digits", seed=0)
    real, fake = captured["real"], captured["fake"]
    m = min(len(real), len(fake), 1000)
    print(f"features: {len(real)} real x {len(fake)} generated, {real.shape[1]}-d; torch routes "
          f"{routes(len(real), len(fake), 100, m, real.shape[1])}")

    exact = clean_fid_kid(real, fake, dtype=np.float64)
    values = {"clean-fid": clean_fid_kid(real, fake), "torch": torch_kid(real, fake)}
    print(f"KID: clean-fid float64 {exact:.10g}, torch {values['torch']:.10g} (rel. diff "
          f"{abs(values['torch'] - exact) / abs(exact):.1e}), clean-fid float32 (before) "
          f"{values['clean-fid']:.10g} (rel. diff {abs(values['clean-fid'] - exact) / abs(exact):.1e})")

    arms = {"clean-fid": clean_fid_kid, "torch": torch_kid}
    alone: dict[str, list[tuple[float, float]]] = {arm: [] for arm in arms}
    whole: dict[str, list[tuple[float, float]]] = {arm: [] for arm in arms}
    for r in range(args.rounds):
        for arm, fn in (arms.items() if r % 2 == 0 else reversed(list(arms.items()))):
            _, wall, cpu = timed(fn, real, fake)
            alone[arm].append((cpu, wall))
            fid_module.kid = fn
            pipe.gen.manual_seed(0)  # the same generated samples in every evaluation
            out, wall, cpu = timed(evaluate, pipe, metrics, n=args.n, feature_net="digits", seed=0)
            whole[arm].append((cpu, wall))
            assert out["ref_cache"] == "hit", out["ref_cache"]
            print(f"round {r + 1} {arm:>10}: KID alone {alone[arm][-1][0]:6.2f} s CPU, "
                  f"evaluate {cpu:6.2f} s CPU ({wall:.2f} s wall), kid={out['kid']:.8g}, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    fid_module.kid = torch_kid
    print("KID alone:")
    report("kid", alone)
    print(f"evaluate(n={args.n}, metrics={','.join(metrics)}), reference features cached:")
    report("evaluate", whole)
    share = statistics.median(a[0] for a in alone["clean-fid"]) / \
        statistics.median(w[0] for w in whole["clean-fid"])
    print(f"KID's share of the evaluation before: {share:.0%} (CPU); first evaluate's fid "
          f"{first['fid']:.4f}; load average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
