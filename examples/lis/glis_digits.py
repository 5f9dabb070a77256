"""G-LIS on digits: 0, 1 and 3 LIS modules, and 3 modules with lambda_R = 0 (the paper's
mode-collapse ablation, Sec. 3.3 / Fig. 15). Writes sample and per-module grids to
docs/methods/img/ and prints one table (all runs share seed, steps and nets).

    python examples/lis/glis_digits.py [--steps 1000] [--n 2000] [--seeds 0 1]

Nets: the ``mlp`` backbone on scikit-learn's digits at their native 8 px, RMSprop at the paper's
learning rate 0.0005. (The 16 px DCGAN at width 16 stayed collapsed to one to three classes for
450 steps under every optimiser/normalisation we tried, see docs/methods/lis.md, so it could not
show a difference between the runs within the CPU budget.)

Scores: FID / precision / recall / density / coverage in the shipped digits classifier's feature
space and the number of digit classes covered (``pipe.evaluate``), plus a diversity measure: the
mean pairwise L2 distance between samples in the same feature space. For the LIS runs every row is
also scored for the outputs of each module ("M of N": M modules of N run at sampling, M = 0 is G(z)).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gantk import Pipeline
from gantk.metrics.features import DigitsFeatures
from gantk.sample.viz import save_grid
from gantk_plugins.lis import module_images, only_modules
from gantk_plugins.lis.equations import similarity_loss
from gantk_plugins.lis.glis import find_lis

IMG = Path(__file__).resolve().parents[2] / "docs" / "methods" / "img"

RUNS = {
    "0 modules": None,
    "1 module": {"num_modules": 1},
    "3 modules": {"num_modules": 3},
    "3 modules, lambda_R=0": {"num_modules": 3, "similarity_weight": 0.0},
}


def spec(lis: dict | None, steps: int, seed: int) -> dict:
    out = {"stack": "backbone=mlp + loss=ns + data=digits" + (" + lis" if lis else ""),
           "seed": seed,
           "backbone": {"name": "mlp", "hidden": [128, 256], "latent_dim": 16},
           "data": {"resolution": 8},
           "train": {"steps": steps, "batch_size": 64, "optimizer": "rmsprop", "lr_g": 5e-4,
                     "lr_d": 5e-4, "ema_decay": 0.0, "device": "cpu", "log_every": 50,
                     "sample_every": 0, "ckpt_every": 0}}
    if lis:
        out["methods"] = [{"name": "lis", **lis}]
    return out


def big(x: torch.Tensor) -> torch.Tensor:
    """8 px digits enlarged x4 (nearest) so that the PNGs are readable."""
    return F.interpolate(x, scale_factor=4, mode="nearest")


def pairwise_l2(pipe, n: int, feats: DigitsFeatures) -> float:
    torch.manual_seed(123)
    x = pipe.sample(n)
    f = torch.as_tensor(feats(x, {"embedding"})["embedding"]).double()
    d = torch.cdist(f, f)
    return float(d.sum() / (len(f) * (len(f) - 1)))


def score(pipe, n: int, feats: DigitsFeatures) -> dict:
    torch.manual_seed(321)
    r = pipe.evaluate(metrics=["fid", "prdc", "modes"], n=n)
    keep = {k: r[k] for k in ("fid", "precision", "recall", "density", "coverage", "modes_covered")}
    keep["pairwise_l2"] = pairwise_l2(pipe, min(n, 1000), feats)
    return keep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    feats = DigitsFeatures(1)
    rows = []
    for seed, (name, lis) in ((s, r) for s in args.seeds for r in RUNS.items()):
        pipe = Pipeline.from_spec(spec(lis, args.steps, seed))
        t0 = time.perf_counter()
        logs = pipe.train(progress=False)
        secs = time.perf_counter() - t0
        sims = {k: round(v, 4) for k, v in logs.items() if k.startswith("lis/")}
        n_mod = lis["num_modules"] if lis else 0
        drift = None
        if n_mod:  # how far the modules move z (unweighted Eq. 2 of the last module's output)
            torch.manual_seed(99)
            z = pipe.backbone.sample_latent(2000)
            with torch.no_grad():
                drift = float(similarity_loss(find_lis(pipe).chain(z)[-1], z))
        stages = range(n_mod + 1) if n_mod else [0]
        for m in stages:
            if n_mod:
                with only_modules(pipe, m):
                    s = score(pipe, args.n, feats)
            else:
                s = score(pipe, args.n, feats)
            rows.append({"run": name, "seed": seed, "modules_run": f"{m} of {n_mod}", **s,
                         "train_s": round(secs, 1), "drift_mse": drift,
                         "last_logs": sims if m == n_mod else {}})
            print(json.dumps(rows[-1]), flush=True)
        if seed != args.seeds[0]:
            continue
        torch.manual_seed(7)
        tag = name.replace(" ", "_").replace(",", "").replace("=", "")
        save_grid(big(pipe.sample(64)), IMG / f"lis_digits_{tag}.png", nrow=8)
        if n_mod:
            torch.manual_seed(7)
            grid = module_images(pipe, 16)  # (16, N+1, C, H, W): rows z, z'_1, ..., z'_N
            save_grid(big(grid.transpose(0, 1).reshape(-1, *grid.shape[2:])),
                      IMG / f"lis_digits_{tag}_per_module.png", nrow=16)
    print("\n| run | seed | modules run | FID (clf) | precision | recall | coverage | classes | "
          "pairwise L2 | MSE(z'_N, z) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['seed']} | {r['modules_run']} | {r['fid']:.2f} | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {r['coverage']:.3f} | {r['modes_covered']:.0f} | "
              f"{r['pairwise_l2']:.2f} | "
              + (f"{r['drift_mse']:.4f} |" if r["drift_mse"] is not None else "- |"))


if __name__ == "__main__":
    main()
