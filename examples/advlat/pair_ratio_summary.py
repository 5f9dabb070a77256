"""The verdict of AdvLatGAN's Table 1 claim from examples/advlat/pair_ratio.py runs, one per seed:
is the image/latent distance ratio of the pairs the Eq. 8 search finds smaller than that of the
Eq. 8-inv search, on the same generator and the same starting pairs?

Both searches start from the same 64 pairs of one trained generator, so each seed gives one
paired difference of log ratios; the paired t-test over seeds (gantk.stats, as `gantk sweep`
uses) says whether Eq. 8's ratio is lower, with its 95% CI (as a factor, exp of the log
difference). The start ratio is a secondary comparison.

    for s in 0 1 2 3 4; do OMP_NUM_THREADS=1 .venv/bin/python examples/advlat/pair_ratio.py --seed $s \
        --out /tmp/pairs_$s.png > DIR/seed_$s.json; done
    .venv/bin/python examples/advlat/pair_ratio_summary.py DIR      # writes DIR/verdicts.{json,md}
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from gantk.sweeping.verdicts import verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="holds seed_S.json from pair_ratio.py")
    args = ap.parse_args()
    runs = {int(f.stem.removeprefix("seed_")): json.loads(f.read_text())
            for f in sorted(args.folder.glob("seed_*.json"))}
    log = {name: {s: math.log(r[f"ratio_{name}"]) for s, r in runs.items()}
           for name in ("start", "eq8", "eq8_inv")}
    final = {"Eq. 8-inv": {"log_ratio": log["eq8_inv"]}, "Eq. 8": {"log_ratio": log["eq8"]},
             "start": {"log_ratio": log["start"]}}
    found = verdicts(final, cells=["Eq. 8-inv", "Eq. 8", "start"], baseline="Eq. 8-inv",
                     primary=["log_ratio"], directions={"log_ratio": "min"})
    main_v = next(v for v in found if v["cell"] == "Eq. 8")
    factor = {k: math.exp(-main_v[k]) for k in ("mean", "ci_low", "ci_high")}
    out = {"seeds": sorted(runs), "per_seed": {s: {k: r[k] for k in ("ratio_start", "ratio_eq8",
                                                                     "ratio_eq8_inv",
                                                                     "share_pairs_eq8_below_inv",
                                                                     "train_seconds")}
                                               for s, r in runs.items()},
           "settings": {k: runs[min(runs)][k] for k in ("stack", "backbone", "train_steps",
                                                        "pairs", "search_steps", "step_size")},
           "verdicts": found,
           "eq8_inv_over_eq8": {"geometric_mean": factor["mean"], "ci_low": factor["ci_high"],
                                "ci_high": factor["ci_low"]}}
    (args.folder / "verdicts.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# Table 1: Eq. 8 vs Eq. 8-inv distance ratio", "",
             f"Seeds {', '.join(map(str, sorted(runs)))}; {out['settings']['pairs']} pairs, "
             f"{out['settings']['search_steps']} search steps of {out['settings']['step_size']}; "
             f"paired t-test over seeds on log ratios (baseline: Eq. 8-inv).", "",
             "| seed | start | Eq. 8 | Eq. 8-inv | share of pairs with Eq. 8 below |",
             "|---|---|---|---|---|"]
    for s, r in sorted(runs.items()):
        lines.append(f"| {s} | {r['ratio_start']:.4f} | {r['ratio_eq8']:.4f} | "
                     f"{r['ratio_eq8_inv']:.3f} | {r['share_pairs_eq8_below_inv']:.2f} |")
    lines += [""] + [f"- {v['cell']} vs Eq. 8-inv, log ratio: {v['sentence']}" for v in found]
    lines.append(f"- Eq. 8-inv / Eq. 8 ratio: x{factor['mean']:.1f} (geometric mean over seeds), "
                 f"95% CI x{factor['ci_high']:.1f} to x{factor['ci_low']:.1f}")
    (args.folder / "verdicts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
