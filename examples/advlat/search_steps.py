"""AdvLatGAN App. E.4 / Fig. 8 at CPU scale: sample quality of ONE trained generator against the
number of advlat_z search steps.

Per seed, a DCGAN with a 2-d latent is trained on mnist5k (the paper: DCGAN, latent 2, batch 128,
lr 2e-4, bce loss, 20,000 steps on MNIST), then the same generator is sampled with the I-FGSM
latent search of K steps of 0.03 (the paper's 30 iterations of 0.03) for every K, and scored in
the shipped MNIST classifier's space: FID, precision/recall/density/coverage and the share of
confidently classified samples (`confidence`). Training once and varying only the sampling is
the claim's protocol; the sweep file examples/sweeps/repro_advlat_mnist2d.toml does the same
with one training per cell (bit-identical on the CPU, not on a GPU, where cuDNN is
nondeterministic). Prints a mean +- std table over seeds with the difference to K = 0, writes
OUT/summary.json, OUT/seed_S/ (ordinary run directories: `gantk eval OUT/seed_0 --with advlat_z`
works on them) and, for the first seed, OUT/search_K_seedS.png (one grid per K, same latents).

    .venv/bin/python examples/advlat/search_steps.py --out runs/e4 [--seeds 0 1 2] [--steps 5000]

A finished seed is not retrained (its checkpoint is loaded), so a stopped call can be repeated.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gantk import Pipeline
from gantk.sweeping.report import effect, p_text, verdict_text
from gantk.sweeping.summary import curve_points, mean_std, run_curves
from gantk.sweeping.verdicts import trend_meaning, trends, verdicts
from gantk.sweeping.sweeps import in_training_evals
from gantk.sample.viz import save_grid

STACK = Path(__file__).resolve().parents[1] / "stacks" / "mnist5k.toml"
METRICS = ["fid", "prdc", "confidence"]
KEYS = ["fid", "precision", "recall", "density", "coverage", "confident_share", "mean_confidence"]


def _pipeline(run: Path, args: argparse.Namespace, seed: int) -> Pipeline:
    overrides = [f"seed={seed}", "backbone.latent_dim=2", f"backbone.width={args.width}",
                 f"data.resolution={args.resolution}", f"train.steps={args.steps}",
                 f"train.batch_size={args.batch}", "train.lr_g=2e-4", "train.lr_d=2e-4",
                 "train.sample_every=0", "train.ckpt_every=500", f"train.device={args.device}",
                 "train.eval_every=1000", 'train.eval_metrics=["fid"]', "train.eval_n=2000"]
    if (run / "checkpoints").is_dir():
        pipe = Pipeline.load(run, device=args.device)
        if pipe.step >= args.steps:
            return pipe
    pipe = Pipeline.from_spec(STACK, overrides, device=args.device)
    pipe.train(out=run, progress=False)  # resumes from run's checkpoints when there are some
    return pipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/e4")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=5000, help="training steps (paper: 20,000)")
    ap.add_argument("--search", nargs="+", type=int, default=[0, 10, 30],
                    help="advlat_z iterations to compare (paper: 30)")
    ap.add_argument("--step-size", type=float, default=0.03, help="I-FGSM step (paper: 0.03)")
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--n", type=int, default=5000, help="samples scored per K")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(1)

    out = Path(args.out)
    results: dict[int, dict[int, dict[str, float]]] = {k: {} for k in args.search}
    t_all = time.perf_counter()
    for i, seed in enumerate(args.seeds):
        t0 = time.perf_counter()
        pipe = _pipeline(out / f"seed_{seed}", args, seed)
        t_train = time.perf_counter() - t0
        for k in args.search:
            with_ = [{"name": "advlat_z", "steps": k, "step_size": args.step_size}] if k else None
            res = pipe.evaluate(METRICS, n=args.n, with_=with_, seed=0, progress=False)
            results[k][seed] = {key: float(res[key]) for key in KEYS}
            if i == 0:
                torch.manual_seed(1)  # the same latents for every K
                save_grid(pipe.sample(64, with_=with_), out / f"search_{k}_seed{seed}.png", nrow=8)
        print(f"seed {seed}: trained in {t_train:.0f} s; " + "; ".join(
            f"K={k}: fid {results[k][seed]['fid']:.3f}, confident "
            f"{results[k][seed]['confident_share']:.3f}" for k in args.search), flush=True)

    base = args.search[0]
    directions = {"fid": "min", **{k: "max" for k in KEYS if k != "fid"}}
    names = [f"K={k}" for k in args.search]
    found = verdicts({f"K={k}": {key: {s: results[k][s][key] for s in args.seeds} for key in KEYS}
                      for k in args.search}, cells=names, baseline=f"K={base}", primary=["fid"],
                     directions=directions)
    table = {}
    print(f"\n| K (steps of {args.step_size}) | " + " | ".join(KEYS) + " |")
    print("| --- |" + " --- |" * len(KEYS))
    for k in args.search:
        table[k] = {}
        for key in KEYS:
            vals = [results[k][s][key] for s in args.seeds]
            m, sd = mean_std(vals)
            table[k][key] = {"mean": m, "std": sd, "values": vals}
        print(f"| {k} | " + " | ".join(f"{table[k][key]['mean']:.4g} ± {table[k][key]['std']:.2g}"
                                     for key in KEYS) + " |")
    print(f"\nverdicts against K = {base} (the same generator, paired by seed; paired t, Holm; "
          "primary: fid):")
    for v in found:
        print(f"  {v['cell']} {v['metric']}: {effect(v)}, p (Holm) {p_text(v['p_adj'])}, "
              f"{verdict_text(v)} ({v['k_better']}/{v['n']} seeds better)")
    # has the generator stopped improving? its FID (train.eval_every) over the last quarter
    evals = [{"cell": "G", "seed": s, "records": [
        r for r in in_training_evals(out / f"seed_{s}") if r.get("step", 0) <= args.steps]}
        for s in args.seeds]
    per_run = run_curves(evals, ["fid"])
    curve = curve_points(per_run, ["G"], args.seeds).get("G", {}).get("fid", [])
    conv = trends(per_run, "G", {"fid": "min"}).get("fid", {})
    if conv:
        print(f"convergence of the generator (in-training FID, n = 2000): {conv['sentence']}: "
              f"{trend_meaning(conv['status'])}")
    wall = time.perf_counter() - t_all
    (out / "summary.json").write_text(json.dumps(
        {"settings": vars(args), "seeds": args.seeds, "table": table, "verdicts": found,
         "wall_seconds": wall, "fid_curve": curve, "convergence": conv}, indent=1))
    print(f"\nwall time {wall:.0f} s; {out / 'summary.json'}")


if __name__ == "__main__":
    main()
