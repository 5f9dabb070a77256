"""CLR-GAN Sec. 4.5 / Fig. 4 as a number: the realness gap between real and generated images.

The paper plots D's mean score on real and on generated images during training and reads
fairness off the gap between the two curves (smaller = fairer). For every cell of a CLR sweep this
averages ``d/real - d/fake`` (the mean D logits the trainer logs in each run's metrics.jsonl) over
the second half of training, then prints mean +- std over seeds with the difference to the first
cell. Run after the sweep:

    gantk sweep examples/sweeps/repro_clr_mnist5k.toml --out runs/repro_clr_mnist5k --jobs 2
    python examples/clr/realness_gap.py runs/repro_clr_mnist5k
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gantk.base.safeio import read_jsonl
from gantk.sweeping.summary import mean_std


def run_gap(run: Path, start_fraction: float) -> float | None:
    rows = [r for r in read_jsonl(run / "metrics.jsonl") if "d/real" in r and "d/fake" in r]
    if not rows:
        return None
    last = max(r["step"] for r in rows)
    late = [r["d/real"] - r["d/fake"] for r in rows if r["step"] > start_fraction * last]
    return sum(late) / len(late)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir")
    ap.add_argument("--from", dest="start", type=float, default=0.5,
                    help="average over steps after this fraction of the run (default: 0.5)")
    args = ap.parse_args()
    cells = sorted(p for p in Path(args.sweep_dir).iterdir() if p.is_dir())
    if not cells:
        raise SystemExit(f"no cells under {args.sweep_dir}: run the sweep first")
    base = None
    print("| cell | realness gap d/real - d/fake (mean +- std over seeds) | seeds |")
    print("| --- | --- | --- |")
    for cell in cells:
        gaps = [g for run in sorted(cell.glob("seed_*"))
                if (run / "metrics.jsonl").is_file() and (g := run_gap(run, args.start)) is not None]
        if not gaps:
            continue
        m, sd = mean_std(gaps)
        base = m if base is None else base
        diff = "" if m == base else f" ({m - base:+.3g})"
        print(f"| {cell.name} | {m:.3f} +- {sd:.3f}{diff} | {len(gaps)} |")


if __name__ == "__main__":
    main()
