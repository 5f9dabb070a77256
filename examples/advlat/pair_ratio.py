"""AdvLatGAN Table 1 / Fig. 5 at CPU scale: on a trained DCGAN (digits, 16 px), the ratio
d_I(G(z0), G(z)) / d_z(z0, z) of pairs found by the Eq. 8 search (minimise the ratio: hard pairs)
against its inverse form (maximise it), both started at the same z0 + N(0, 0.08^2).

The paper (App. F) searches 300 steps of 0.03 on a CIFAR-10 DCGAN; we use the same steps on a
small DCGAN trained here, with G in eval mode (BatchNorm running statistics, as at sampling).
Prints the mean per-pair ratio at the start, after Eq. 8 and after Eq. 8-inv, and writes
docs/methods/img/advlat_pairs.png (rows: Eq. 8 partner, z0, Eq. 8-inv partner). By default the
DCGAN is class-conditional (pairs share the label c of Eq. 8, as on Facades in the paper), with
spectral norm in D and no BatchNorm, hinge loss: see docs/methods/advlat.md for why.

    .venv/bin/python examples/advlat/pair_ratio.py [--train-steps 800]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gantk import Pipeline
from gantk.sample.viz import save_grid
from gantk_plugins.advlat import distance_ratio, hard_pair_search, pair_start, search_state

IMG = Path(__file__).resolve().parents[2] / "docs" / "methods" / "img"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-steps", type=int, default=800)
    ap.add_argument("--steps", type=int, default=300, help="search iterations (App. F: 300)")
    ap.add_argument("--step-size", type=float, default=0.03, help="search step (App. F: 0.03)")
    ap.add_argument("--n", type=int, default=64, help="pairs (App. F: a batch of 64)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loss", default="hinge")
    ap.add_argument("--method", default="", help="a method to train the DCGAN with, e.g. msgan "
                    "(plain DCGANs on the small digits set collapse to one image)")
    ap.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=False,
                    help="dcgan's BatchNorm (in G and D); off by default: see docs/methods/advlat.md")
    ap.add_argument("--spectral-norm", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--conditional", action=argparse.BooleanOptionalAction, default=True,
                    help="class-conditional DCGAN: pairs share the label c of Eq. 8")
    ap.add_argument("--out", default="advlat_pairs.png", help="figure name in docs/methods/img")
    args = ap.parse_args()
    torch.set_num_threads(1)

    pipe = Pipeline.from_spec({
        "stack": f"backbone=dcgan + loss={args.loss} + data=digits"
                 + (f" + {args.method}" if args.method else ""), "seed": args.seed,
        "backbone": {"width": 16, "latent_dim": 32, "batch_norm": args.batch_norm,
                     "spectral_norm": args.spectral_norm, "conditional": args.conditional},
        "data": {"resolution": 16},
        "train": {"steps": args.train_steps, "batch_size": 64, "lr_g": 2e-4, "lr_d": 2e-4,
                  "betas": [0.5, 0.999]},
    })
    t0 = time.time()
    pipe.train(progress=False)
    train_s = time.time() - t0
    G = pipe.backbone.generator

    torch.manual_seed(args.seed + 1)
    z0 = pipe.backbone.sample_latent(args.n)
    start = pair_start(z0, how="gaussian", scale=0.08)
    y = torch.arange(args.n) % 10 if pipe.backbone.num_classes else None
    results = {}
    with search_state([G], mode="eval"):
        with torch.no_grad():
            x0 = G(z0, y)
        ratio = lambda z: distance_ratio(x0, G(z, y), z0, z)  # noqa: E731
        found = {}
        for name, inverse in [("eq8", False), ("eq8_inv", True)]:
            z = hard_pair_search(lambda zz: G(zz, y), z0, x0, steps=args.steps,
                                 step_size=args.step_size, start=start, inverse=inverse)
            found[name] = z
        with torch.no_grad():
            results["start"] = ratio(start)
            for name, z in found.items():
                results[name] = ratio(z)
            yy = None if y is None else y[:12]
            images = torch.cat([G(found["eq8"][:12], yy), x0[:12], G(found["eq8_inv"][:12], yy)])
            d_latent = {k: (z - z0).abs().mean(1) for k, z in found.items()}
            # diversity of the trained G: mean |G(z_i) - G(z_j)| over random pairs (0: collapsed)
            diversity = float((x0 - x0.roll(1, 0)).abs().mean())
    out = {"stack": pipe.spec.shorthand, "backbone": pipe.spec.backbone.options,
           "train_steps": args.train_steps, "g_diversity": diversity,
           "train_seconds": round(train_s, 1), "pairs": args.n,
           "search_steps": args.steps, "step_size": args.step_size,
           **{f"ratio_{k}": float(v.mean()) for k, v in results.items()},
           **{f"ratio_{k}_median": float(v.median()) for k, v in results.items()},
           **{f"d_z_{k}": float(v.mean()) for k, v in d_latent.items()},
           "share_pairs_eq8_below_inv": float((results["eq8"] < results["eq8_inv"]).float().mean())}
    # 4x nearest-neighbour upscaling so that 16 px digits are visible in the docs
    images = torch.nn.functional.interpolate(images, scale_factor=4, mode="nearest")
    save_grid(images, IMG / args.out, nrow=12)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
