"""AdvLatGAN Fig. 7 / 10 / 11 at CPU scale: an under-trained MLP GAN on Ring and Grid, then the
post-training transform ``advlat_z`` (I-FGSM on the generator loss, G and D frozen) with the
paper's step 0.003 (App. E.2) for a growing number of iterations.

Prints, per data set and iteration count, the mode metrics of core/metrics/modes.py (share of
samples within 3 std of a mode, modes covered, reverse KL; the same at a looser 0.1 radius) and the
median distance of a sample to its nearest mode (the last row is cross-checked with
``pipe.evaluate(metrics=["modes"])``), and writes scatter plots to docs/methods/img/advlat_{ring,grid}.png.

    .venv/bin/python examples/advlat/ring_grid.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gantk import Pipeline
from gantk.metrics.modes import mode_metrics

IMG = Path(__file__).resolve().parents[2] / "docs" / "methods" / "img"

# the paper: 2000 iterations (one epoch of 100K points, i.e. batch 50) for the Ring; Grid "50 epochs"
# (we cannot afford that on a CPU: see docs/methods/advlat.md for what we ran)
SETTINGS = {
    "ring": {"train_steps": 2000, "batch_size": 50},
    "grid": {"train_steps": 4000, "batch_size": 50},
}


def make_pipe(data: str, steps: int, batch: int, seed: int) -> Pipeline:
    return Pipeline.from_spec({
        "stack": f"backbone=mlp + loss=ns + data={data}", "seed": seed,
        "backbone": {"latent_dim": 2, "hidden": [100, 200, 100]},  # Tables 13-14
        "train": {"steps": steps, "batch_size": batch, "lr_g": 2e-4, "lr_d": 2e-4,
                  "betas": [0.5, 0.999]},
    })


def nearest_mode_distance(x: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x.double(), modes.double()).min(1).values


def run(data: str, *, n: int, counts: list[int], step_size: float, seed: int, quick: bool) -> dict:
    cfg = SETTINGS[data]
    steps = cfg["train_steps"] // (10 if quick else 1)
    pipe = make_pipe(data, steps, cfg["batch_size"], seed)
    t0 = time.time()
    pipe.train(progress=False)
    train_s = time.time() - t0
    modes = pipe.data_info.modes
    rows, shown = [], {}
    std = float(pipe.data_info.mode_std)
    for k in counts:
        with_ = [{"name": "advlat_z", "steps": k, "step_size": step_size}]
        t0 = time.time()
        torch.manual_seed(seed)  # the same z for every iteration count
        x = pipe.sample(n, with_=with_)
        strict = mode_metrics(x, modes, std)                       # 3 std, the paper's protocol
        loose = mode_metrics(x, modes, std, threshold=0.1 / std)   # within 0.1 of a centre
        dist = nearest_mode_distance(x, modes)
        rows.append({"iterations": k, "high_quality": strict["high_quality"],
                     "modes_covered": strict["modes_covered"], "reverse_kl": strict["reverse_kl"],
                     "within_0.1": loose["high_quality"], "modes_covered_0.1": loose["modes_covered"],
                     "median_dist": float(dist.median()), "seconds": round(time.time() - t0, 1)})
        print(data, json.dumps(rows[-1]), flush=True)
        shown[k] = x
    # cross-check of the last row with the evaluation engine's `modes` metric (its own draw)
    final = pipe.evaluate(metrics=["modes"], n=n, seed=seed,
                          with_=[{"name": "advlat_z", "steps": counts[-1], "step_size": step_size}])
    rows[-1]["evaluate_modes"] = {k: final[k] for k in ("high_quality", "modes_covered")}
    print(data, "pipe.evaluate(modes) at", counts[-1], json.dumps(rows[-1]["evaluate_modes"]))
    plot(data, pipe, shown, counts, step_size)
    return {"data": data, "train_steps": steps, "batch_size": cfg["batch_size"],
            "train_seconds": round(train_s, 1), "n": n, "step_size": step_size, "rows": rows}


def plot(data: str, pipe: Pipeline, shown: dict[int, torch.Tensor], counts: list[int],
         step_size: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pick = [counts[0], counts[len(counts) // 2], counts[-1]]
    modes = pipe.data_info.modes
    fig, axes = plt.subplots(1, len(pick), figsize=(4 * len(pick), 4), dpi=110)
    for ax, k in zip(axes, pick):
        x = shown[k]
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4, c="#1f77b4", rasterized=True)
        ax.scatter(modes[:, 0], modes[:, 1], s=25, c="#d62728", marker="x")
        title = "G(z), no search" if k == 0 else f"advlat_z: {k} x {step_size}"
        ax.set_title(f"{data}: {title}", fontsize=10)
        ax.set_aspect("equal")
        lim = float(modes.abs().max()) + 1.0
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    fig.tight_layout()
    IMG.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMG / f"advlat_{data}.png")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tenth of the training, for a smoke run")
    ap.add_argument("--n", type=int, default=2000, help="samples searched and scored")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", nargs="*", default=["ring", "grid"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    counts = [0, 10, 30, 100, 300, 1000, 2000] if not args.quick else [0, 10, 100]
    out = [run(d, n=args.n, counts=counts, step_size=0.003, seed=args.seed, quick=args.quick)
           for d in args.data]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
