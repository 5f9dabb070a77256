"""CLR-GAN Sec. 4.5 / Fig. 4 as a number: the realness gap between real and generated images.

The paper plots D's mean score on real and on generated images during training and reads
fairness off the gap between the two curves (smaller = fairer). For every cell of a CLR sweep this
averages ``d/real - d/fake`` (the mean D logits the trainer logs in each run's metrics.jsonl) over
the second half of training, then compares every cell with the baseline cell seed by seed: the
paired t-test of gantk's sweep verdicts (mean paired difference, 95% CI, Holm over the cells;
smaller is fairer). Run after the sweep:

    gantk sweep examples/sweeps/repro_clr_mnist5k.toml --out runs/repro_clr_mnist5k --jobs 2
    python examples/clr/realness_gap.py runs/repro_clr_mnist5k [--out DIR/realness_gap]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gantk.base.safeio import read_jsonl
from gantk.sweeping.summary import mean_std
from gantk.sweeping.verdicts import verdicts


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
    ap.add_argument("--baseline", default="lambda=0__0", help="the baseline cell's folder")
    ap.add_argument("--out", help="write OUT.json and OUT.md with the paired verdicts")
    args = ap.parse_args()
    cells = sorted(p for p in Path(args.sweep_dir).iterdir() if p.is_dir())
    if not cells:
        raise SystemExit(f"no cells under {args.sweep_dir}: run the sweep first")
    gaps: dict[str, dict[int, float]] = {}
    for cell in cells:
        for run in sorted(cell.glob("seed_*")):
            if (run / "metrics.jsonl").is_file() and (g := run_gap(run, args.start)) is not None:
                gaps.setdefault(cell.name, {})[int(run.name.removeprefix("seed_"))] = g
    if args.baseline not in gaps:
        raise SystemExit(f"no runs of the baseline {args.baseline!r} under {args.sweep_dir}")
    names = [args.baseline] + [c for c in gaps if c != args.baseline]
    found = verdicts({c: {"realness_gap": gaps[c]} for c in names}, cells=names,
                     baseline=args.baseline, primary=["realness_gap"],
                     directions={"realness_gap": "min"})
    lines = ["| cell | realness gap d/real - d/fake (mean +- std over seeds) | seeds | paired "
             "difference to the baseline |", "| --- | --- | --- | --- |"]
    for c in names:
        m, sd = mean_std(list(gaps[c].values()))
        v = next((v for v in found if v["cell"] == c), None)
        lines.append(f"| {c} | {m:.3f} +- {sd:.3f} | {len(gaps[c])} | "
                     f"{v['sentence'] if v else 'baseline'} |")
    print("\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.with_suffix(".json").write_text(json.dumps(
            {"sweep_dir": str(args.sweep_dir), "from": args.start, "baseline": args.baseline,
             "gaps": gaps, "verdicts": found}, indent=1) + "\n")
        out.with_suffix(".md").write_text(
            f"# Realness gap (CLR Sec. 4.5), second half of training, {args.sweep_dir}\n\n"
            + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
