"""R-separate (Sec. 2.1, Algorithm 1) applied to an under-trained DCGAN on digits: before/after
grids (G(z) next to G(R(G(z)))), D's score of both, and the digits-classifier scores.

    python examples/lis/rseparate_digits.py [--backbone dcgan|mlp] [--g-steps 300] [--r-steps 500]

``dcgan``: the 16 px DCGAN (width 16, no batch norm), Adam 2e-4. ``mlp``: the G-LIS experiment's
MLP nets on 8 px digits (RMSprop 5e-4), which unlike the small DCGAN is diverse after a few
hundred steps while still making visibly broken digits.

The G/D pair is trained first (a run directory under /tmp), then the reverser is added at sampling
exactly as a user would (``pipe.sample(n, with_=[{"name": "reverser", ...}])``, the CLI's
``gantk sample RUN --with reverser``): R is fitted once with G frozen and cached in RUN_DIR.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gantk import Pipeline
from gantk.sample.viz import save_grid

IMG = Path(__file__).resolve().parents[2] / "docs" / "methods" / "img"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", choices=["dcgan", "mlp"], default="dcgan")
    ap.add_argument("--g-steps", type=int, default=300)
    ap.add_argument("--r-steps", type=int, default=500)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train = {"steps": args.g_steps, "batch_size": 64, "ema_decay": 0.0, "device": "cpu",
             "log_every": 50, "sample_every": 0, "ckpt_every": 0}
    if args.backbone == "dcgan":
        # batch_norm off, as in the documented runs (the backbone then put BN on D's last 1x1 map)
        backbone = {"name": "dcgan", "width": 16, "latent_dim": 32, "batch_norm": False}
        data = {"name": "digits", "resolution": 16}
    else:
        backbone = {"name": "mlp", "hidden": [128, 256], "latent_dim": 16}
        data = {"name": "digits", "resolution": 8}
        train.update(optimizer="rmsprop", lr_g=5e-4, lr_d=5e-4)
    spec = {"seed": args.seed, "backbone": backbone, "data": data, "loss": {"name": "ns"},
            "train": train}
    run = Path(tempfile.mkdtemp(prefix="lis_rsep_")) / "run"
    pipe = Pipeline.from_spec(spec)
    pipe.train(out=run, progress=False)
    rev = {"name": "reverser", "steps": args.r_steps, "dropout": args.dropout, "progress": False}
    t0 = time.perf_counter()
    [comp] = pipe.extra_components([rev])  # fits R (G frozen) and caches it in RUN_DIR/reverser
    fit_s = time.perf_counter() - t0

    # the same latents before and after; D's score on both (D never saw G(R(G(z))))
    torch.manual_seed(11)
    z = pipe.backbone.sample_latent(args.n)
    G, D = pipe.backbone.generator, pipe.backbone.discriminator
    with torch.no_grad(), pipe.eval_mode():
        before = torch.cat([G(c) for c in z.split(500)])
        after = torch.cat([G(comp.R(x)) for x in before.split(500)])
        d_before = torch.cat([D(x) for x in before.split(500)])
        d_after = torch.cat([D(x) for x in after.split(500)])
    out = {
        "backbone": args.backbone, "g_steps": args.g_steps, "r_steps": args.r_steps, "dropout": args.dropout,
        "r_fit_seconds": round(fit_s, 1),
        "r_mse_first_last": [round(comp.losses[0], 4), round(sum(comp.losses[-20:]) / 20, 4)],
        "d_logit_before": float(d_before.mean()), "d_logit_after": float(d_after.mean()),
        "d_prob_real_before": float(torch.sigmoid(d_before).mean()),
        "d_prob_real_after": float(torch.sigmoid(d_after).mean()),
        "d_fake_loss_before": float(F.softplus(d_before).mean()),  # -log(1 - D(x))
        "d_fake_loss_after": float(F.softplus(d_after).mean()),
        "frac_improved": float((d_after > d_before).double().mean()),
        "mean_abs_pixel_change": float((after - before).abs().mean()),
    }
    metrics = ["fid", "prdc", "modes"]
    keys = ("fid", "precision", "recall", "density", "coverage", "modes_covered")
    torch.manual_seed(321)
    plain = pipe.evaluate(metrics=metrics, n=args.n)
    torch.manual_seed(321)
    withr = pipe.evaluate(metrics=metrics, n=args.n, with_=[rev])
    out["scores_before"] = {k: plain[k] for k in keys}
    out["scores_after"] = {k: withr[k] for k in keys}
    print(json.dumps(out, indent=1))
    pairs = torch.stack([before[:32], after[:32]], 1).reshape(-1, *before.shape[1:])
    if pairs.shape[-1] < 16:  # 8 px digits enlarged x4 (nearest) so that the PNG is readable
        pairs = F.interpolate(pairs, scale_factor=4, mode="nearest")
    # before, after, before, after ...
    save_grid(pairs, IMG / f"lis_rseparate_pairs_{args.backbone}.png", nrow=16)


if __name__ == "__main__":
    main()
