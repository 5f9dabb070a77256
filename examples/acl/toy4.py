"""The prior analysis of Sec. 5.6 (Fig. 11): ACL-AE on a 4-mode 2-D Gaussian, with a 1-mode and a
4-mode Gaussian prior, scatter plots of the real codes E(x) (purple) and the learned codes G_z(z)
(turquoise) at several steps, and of the generated data against the real data.

    python examples/acl/toy4.py [--steps 2000] [--seeds 0 1 2]

Writes docs/methods/img/acl_toy4.png (one row per prior and seed) and acl_toy4.json; prints, per
prior and seed: the energy distance between real and learned codes (and between real and generated
points), and the mode metrics of the generated points (high-quality share within 3 std of a mode,
modes covered, reverse KL).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from gantk import Pipeline
from gantk_plugins.acl import CodeGenerator, CodeLearning

IMG = Path(__file__).resolve().parents[2] / "docs" / "methods" / "img"
STD = 0.1


def spec(prior_modes: int, steps: int, seed: int) -> dict:
    return {"stack": "backbone=autoencoder + data=grid + acl", "seed": seed,
            "backbone": {"latent_dim": 2, "hidden": [64, 64]},
            "data": {"side": 2, "spacing": 2.0, "std": STD, "per_mode": 2000},
            "methods": [{"name": "acl", "code_hidden": 64, "prior_modes": prior_modes,
                         "prior_mode_radius": math.sqrt(2), "prior_mode_std": STD}],
            "train": {"steps": steps, "batch_size": 256, "lr_g": 1e-3, "lr_d": 1e-3,
                      "betas": [0.5, 0.999], "device": "cpu"}}


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """2 E|a - b| - E|a - a'| - E|b - b'| (0 iff the distributions agree)."""
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


@torch.no_grad()
def snapshot(pipe: Pipeline, n: int = 1000) -> dict[str, torch.Tensor]:
    gen = next(c for c in pipe.components if isinstance(c, CodeGenerator))
    learn = next(c for c in pipe.components if isinstance(c, CodeLearning))
    x = pipe.real_data()[0]
    x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n]]
    z = gen.prior(pipe.backbone.sample_latent(n))
    return {"prior": z, "real_codes": learn.encode(x, pipe.backbone), "codes": gen.net(z),
            "data": pipe.sample(n), "real": x}


def train(prior_modes: int, steps: int, seed: int, marks: list[int]):
    torch.manual_seed(seed)
    pipe = Pipeline.from_spec(spec(prior_modes, steps, seed))
    snaps = []
    for m in marks:
        pipe.train(steps=m - pipe.step, progress=False)
        snaps.append((pipe.step, snapshot(pipe)))
    ev = pipe.evaluate(metrics=["modes"], n=2000, seed=seed)
    last = snaps[-1][1]
    out = {"code_energy_distance": round(energy_distance(last["real_codes"], last["codes"]), 4),
           "data_energy_distance": round(energy_distance(last["real"], last["data"]), 4)}
    out.update({k: round(float(v), 4) for k, v in ev.items()
                if k in ("high_quality", "modes_covered", "reverse_kl")})
    return out, snaps


def plot(panels: dict[tuple[int, int], list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(panels)
    cols = len(panels[rows[0]]) + 2
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.4 * cols, 2.5 * len(rows)), dpi=110)
    for r, (k, seed) in enumerate(rows):
        snaps = panels[(k, seed)]
        first = snaps[0][1]
        ax = axes[r, 0]
        ax.scatter(*first["prior"].T, s=1, c="#555555")
        ax.set_title(f"{k}-mode prior z (seed {seed})", fontsize=8)
        for c, (step, s) in enumerate(snaps, start=1):
            ax = axes[r, c]
            ax.scatter(*s["real_codes"].T, s=1, c="#7b3294", label="E(x)")
            ax.scatter(*s["codes"].T, s=1, c="#1fb5a5", alpha=0.6, label="G_z(z)")
            ax.set_title(f"codes, step {step}", fontsize=8)
        ax = axes[r, -1]
        last = snaps[-1][1]
        ax.scatter(*last["real"].T, s=1, c="#d62728", label="real")
        ax.scatter(*last["data"].T, s=1, c="#1f77b4", alpha=0.5, label="G(G_z(z))")
        ax.set_xlim(-2, 2)
        ax.set_ylim(-2, 2)
        ax.set_title("data: real (red), generated", fontsize=8)
        for a in axes[r]:
            a.tick_params(labelsize=6)
            a.set_aspect("equal", adjustable="box")
    axes[0, 1].legend(fontsize=6, markerscale=5, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    IMG.mkdir(parents=True, exist_ok=True)
    marks = sorted({max(1, args.steps // 10), args.steps // 3, args.steps})
    results: dict = {"settings": {"steps": args.steps, "seeds": args.seeds, "data_std": STD,
                                  "batch_size": 256, "lr": 1e-3}}
    panels = {}
    for k in (1, 4):
        for seed in args.seeds:
            out, snaps = train(k, args.steps, seed, marks)
            results[f"{k}-mode/seed{seed}"] = out
            print(f"[{k}-mode prior, seed {seed}] {out}", flush=True)
            panels[(k, seed)] = snaps
    for k in (1, 4):
        rows = [results[f"{k}-mode/seed{s}"] for s in args.seeds]
        results[f"{k}-mode/mean"] = {key: round(sum(r[key] for r in rows) / len(rows), 4)
                                     for key in rows[0]}
    plot(panels, IMG / "acl_toy4.png")
    (IMG / "acl_toy4.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if "mean" in k}, indent=2))


if __name__ == "__main__":
    main()
