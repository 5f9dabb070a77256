"""The ADA controller's trace (p and r_t by step) of every ADA run in a finished sweep directory,
with the figures docs/methods/ada.md quotes (examples/sweeps/ada_mnist5k500.toml; "Result").

Reads each run's ``metrics.jsonl`` (rows with ``step``, ``ada/p``, ``ada/rt``; runs without them,
such as ``aug=none``, are skipped) and writes PREFIX.json (per run: the full trace and the
summary) and PREFIX.md (the summary table, one row per run):

* ``p_peak`` and ``p_peak_step``: the largest logged p and the first step it was logged at;
* ``p_final``: p at the last logged step; ``p_late_min`` / ``p_late_max``: p's range over the
  second half of training;
* ``rt_first``: r_t of the first logged window; ``rt_early_min`` / ``rt_early_max``: its range over
  the windows up to step ``--early`` (100 by default);
* ``rt_after_mean`` / ``rt_after_std``: mean and standard deviation (ddof 1) of the windows after
  step ``--after`` (250 by default, as examples/ada/d_overfit.py); ``rt_after_min`` / ``_max``;
* ``rt_half_mean`` / ``rt_half_std``: the same over the second half of training (steps above half
  the last logged step).

    python examples/ada/ada_trace.py runs/ada_mnist5k500 --out docs/results/paired/ada_mnist5k500/ada_trace
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _fail(msg: str) -> None:
    print(f"ada_trace: {msg}", file=sys.stderr)
    raise SystemExit(2)


def read_trace(metrics: Path) -> list[tuple[int, float, float]]:
    """(step, p, r_t) of every row of one run's metrics.jsonl that logs the ADA controller."""
    rows = []
    for i, line in enumerate(metrics.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            _fail(f"{metrics}, line {i}: not JSON ({e.msg}); a metrics.jsonl has one JSON object "
                  "per line, as gantk train writes it: rerun the run or remove the broken line.")
        if "ada/p" in r and "ada/rt" in r and "step" in r:
            rows.append((int(r["step"]), float(r["ada/p"]), float(r["ada/rt"])))
    return sorted(rows)


def summarize(trace: list[tuple[int, float, float]], early: int, after: int) -> dict:
    steps = np.array([s for s, _, _ in trace])
    p = np.array([x for _, x, _ in trace])
    rt = np.array([x for _, _, x in trace])
    half = steps > steps[-1] / 2
    first = steps <= early
    late = steps > after

    def sd(x: np.ndarray) -> float | None:
        return float(np.std(x, ddof=1)) if len(x) > 1 else None

    peak = int(np.argmax(p))
    return dict(
        windows=len(trace), last_step=int(steps[-1]),
        p_peak=float(p[peak]), p_peak_step=int(steps[peak]), p_final=float(p[-1]),
        p_late_min=float(p[half].min()), p_late_max=float(p[half].max()),
        rt_first=float(rt[0]), rt_first_step=int(steps[0]),
        rt_early_min=float(rt[first].min()) if first.any() else None,
        rt_early_max=float(rt[first].max()) if first.any() else None,
        rt_after_mean=float(rt[late].mean()) if late.any() else None, rt_after_std=sd(rt[late]),
        rt_after_min=float(rt[late].min()) if late.any() else None,
        rt_after_max=float(rt[late].max()) if late.any() else None,
        rt_half_mean=float(rt[half].mean()), rt_half_std=sd(rt[half]),
    )


def _f(x: float | None, nd: int = 3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep_dir", type=Path, help="a finished sweep's --out directory")
    ap.add_argument("--out", type=Path, required=True, help="prefix of the .json and .md written")
    ap.add_argument("--early", type=int, default=100, help="r_t's start: windows up to this step")
    ap.add_argument("--after", type=int, default=250, help="r_t's level: windows after this step")
    a = ap.parse_args(argv)
    if not a.sweep_dir.is_dir():
        _fail(f"{a.sweep_dir} is not a directory: give the --out directory of a finished sweep "
              "(it holds CELL/seed_N/metrics.jsonl).")
    runs = {}
    for metrics in sorted(a.sweep_dir.glob("*/seed_*/metrics.jsonl")):
        trace = read_trace(metrics)
        if trace:
            name = str(metrics.parent.relative_to(a.sweep_dir))
            runs[name] = dict(summary=summarize(trace, a.early, a.after),
                              trace=[dict(step=s, p=p, rt=r) for s, p, r in trace])
    if not runs:
        _fail(f"no run under {a.sweep_dir} logs the ADA controller (rows with 'ada/p' and "
              "'ada/rt' in CELL/seed_N/metrics.jsonl): give the directory of a sweep with an "
              "`ada` cell.")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    doc = dict(sweep_dir=str(a.sweep_dir), early=a.early, after=a.after,
               command="python examples/ada/ada_trace.py " + " ".join(sys.argv[1:] if argv is None else argv),
               runs=runs)
    a.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = [f"# ADA controller trace, {a.sweep_dir}", "",
             f"`{doc['command']}`", "",
             "p and r_t as logged in each run's metrics.jsonl (`ada/p`, `ada/rt`; r_t is the mean "
             "sign of D on the reals of each logged window). Second half: steps above half the "
             "last logged step. The full traces are in the .json.", "",
             f"| run | windows | p peak (step) | p final | p, second half | r_t first (step) | "
             f"r_t up to step {a.early} | r_t after step {a.after}: mean +- std [min, max] | "
             "r_t, second half: mean +- std |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in runs.items():
        s = r["summary"]
        lines.append(
            f"| {name} | {s['windows']} | {_f(s['p_peak'])} ({s['p_peak_step']}) | {_f(s['p_final'])} | "
            f"{_f(s['p_late_min'])}-{_f(s['p_late_max'])} | {_f(s['rt_first'])} ({s['rt_first_step']}) | "
            f"{_f(s['rt_early_min'])}-{_f(s['rt_early_max'])} | {_f(s['rt_after_mean'])} +- "
            f"{_f(s['rt_after_std'])} [{_f(s['rt_after_min'])}, {_f(s['rt_after_max'])}] | "
            f"{_f(s['rt_half_mean'])} +- {_f(s['rt_half_std'])} |")
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out.with_suffix('.json')} and .md ({len(runs)} runs)")


if __name__ == "__main__":
    main()
