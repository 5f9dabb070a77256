"""CLR-GAN experiments in miniature on the embedded digits (16 px) with dcgan (width 16).

One set of training runs feeds the three experiments of docs/methods/clr.md:

1. ablation (the paper's Table 3): (lambda_1, lambda_2) in {(0, 0), (1, 0), (0, 1), (5, 0.5)}, several
   seeds, FID in the digits classifier's feature space (``pipe.evaluate(["fid"])``);
2. fairness (Sec. 4.5, Fig. 4): mean D logit on the real and on the fake batch of each D step
   (``d/real``, ``d/fake`` in RUN_DIR/metrics.jsonl), (0, 0) against (5, 0.5), EMA-smoothed;
3. linear probe (Sec. 4.4): logistic regression on the trained D's features (D.features, frozen)
   on a train/held-out split of the digits, (0, 0) against (5, 0.5), with a randomly initialised D
   as the floor.

    .venv/bin/python examples/clr/experiments.py                 # the documented run
    .venv/bin/python examples/clr/experiments.py --steps 50 --seeds 0   # a smoke run

Writes docs/methods/img/clr_ablation.png, docs/methods/img/clr_fairness.png and
examples/clr/results.json, and prints every number.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
IMG = ROOT / "docs" / "methods" / "img"
PAIRS = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (5.0, 0.5)]


def spec(lam1: float, lam2: float, seed: int, steps: int, *, batch_norm: bool = True) -> dict:
    return {
        "stack": "backbone=dcgan + loss=ns + data=digits + clr",
        "seed": seed,
        "backbone": {"width": 16, "batch_norm": batch_norm},
        "data": {"resolution": 16},
        "methods": [{"name": "clr", "lambda_latent": lam1, "lambda_reconstruction": lam2}],
        "train": {"steps": steps, "batch_size": 64, "log_every": 10, "sample_every": 0,
                  "ckpt_every": 0, "device": "cpu"},
    }


def make_pipe(lam1: float, lam2: float, seed: int, steps: int, *, batch_norm: bool = True):
    """The dcgan of the tables at 16 px. Its D has no BatchNorm on the last, 1x1 feature map (the
    backbone skips BN there: it would normalise the real and the fake batch separately and give
    both the same mean logit, leaving D at loss 2 log 2). With ``batch_norm=False`` (no BN
    anywhere) G collapsed to one image in every run we tried."""
    from gantk import Pipeline

    return Pipeline.from_spec(spec(lam1, lam2, seed, steps, batch_norm=batch_norm))


def probe(pipe, seed: int) -> dict[str, float]:
    """Held-out accuracy of a logistic regression on D's (frozen) features of the real digits:
    ``full`` trains on a random 70 % and tests on the rest; ``10_per_class`` trains on 10 labelled
    images per class and tests on all others (mean of 5 draws), which separates features better
    than the full probe, where even a random D is near the ceiling on this easy data set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = pipe.real_data()
    D = pipe.backbone.discriminator
    with torch.no_grad():
        h = torch.cat([D.features(x[i:i + 256]) for i in range(0, len(x), 256)]).numpy()
    y = y.numpy()
    rng = np.random.default_rng(seed)

    def accuracy(tr: np.ndarray, te: np.ndarray) -> float:
        scaler = StandardScaler().fit(h[tr])
        clf = LogisticRegression(max_iter=2000, C=1.0).fit(scaler.transform(h[tr]), y[tr])
        return float(clf.score(scaler.transform(h[te]), y[te]))

    order = rng.permutation(len(x))
    cut = int(0.7 * len(x))
    full = accuracy(order[:cut], order[cut:])
    few = []
    for _ in range(5):
        tr = np.concatenate([rng.choice(np.flatnonzero(y == c), 10, replace=False) for c in range(10)])
        few.append(accuracy(tr, np.setdiff1d(np.arange(len(x)), tr)))
    return {"full": full, "10_per_class": float(np.mean(few))}


def run(args: tuple[float, float, int, int]) -> dict:
    lam1, lam2, seed, steps = args
    torch.set_num_threads(1)
    pipe = make_pipe(lam1, lam2, seed, steps)
    out: dict = {"lambda_1": lam1, "lambda_2": lam2, "seed": seed, "steps": steps}
    if lam1 == 0 and lam2 == 0:
        out["probe_random_init"] = probe(pipe, seed)
    t = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        pipe.train(out=tmp, progress=False)
        rows = [json.loads(line) for line in open(Path(tmp) / "metrics.jsonl")]
    out["train_s"] = round(time.time() - t, 1)
    out["curve"] = {k: [r.get(k) for r in rows] for k in
                    ("step", "d/real", "d/fake", "clr/latent", "clr/reconstruction")}
    result = pipe.evaluate(metrics=["fid"], n=1000, seed=0)
    out["fid"] = float(result["fid"])
    out["feature_space"] = str(result.get("feature_space", "?"))
    out["probe"] = probe(pipe, seed)
    if seed == 0:
        from gantk.sample.viz import save_grid

        torch.manual_seed(123)
        save_grid(pipe.sample(64), IMG / f"clr_samples_{lam1:g}_{lam2:g}.png", nrow=8)
    print(f"lambda=({lam1:g}, {lam2:g}) seed {seed}: FID {out['fid']:.2f}  probe {out['probe']}"
          f"  ({out['train_s']} s)", flush=True)
    return out


def ema(values: list[float], beta: float = 0.9) -> np.ndarray:
    out, m = [], values[0]
    for v in values:
        m = beta * m + (1 - beta) * v
        out.append(m)
    return np.asarray(out)


def figures(results: list[dict], seeds: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMG.mkdir(parents=True, exist_ok=True)
    # ablation: FID per pair, one dot per seed
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for i, (l1, l2) in enumerate(PAIRS):
        f = [r["fid"] for r in results if (r["lambda_1"], r["lambda_2"]) == (l1, l2)]
        ax.scatter([i] * len(f), f, color="C0", alpha=0.6)
        ax.errorbar(i + 0.15, np.mean(f), yerr=np.std(f), fmt="o", color="C3", capsize=4)
    ax.set_xticks(range(len(PAIRS)), [f"({l1:g}, {l2:g})" for l1, l2 in PAIRS])
    ax.set_xlabel("(lambda_1, lambda_2)")
    ax.set_ylabel("FID (digits classifier features)")
    ax.set_title(f"CLR ablation, dcgan on digits 16 px, seeds {seeds}")
    fig.tight_layout()
    fig.savefig(IMG / "clr_ablation.png", dpi=120)
    plt.close(fig)
    # fairness: mean D logit on real and fake batches over training
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for (l1, l2), color, label in [((0.0, 0.0), "C0", "baseline (0, 0)"),
                                   ((5.0, 0.5), "C3", "clr (5, 0.5)")]:
        runs = [r for r in results if (r["lambda_1"], r["lambda_2"]) == (l1, l2)]
        step = np.asarray(runs[0]["curve"]["step"])
        real = np.mean([ema(r["curve"]["d/real"]) for r in runs], 0)
        fake = np.mean([ema(r["curve"]["d/fake"]) for r in runs], 0)
        axes[0].plot(step, fake, color=color, label=label)
        axes[1].plot(step, real, color=color, label=label)
        axes[2].plot(step, real - fake, color=color, label=label)
    for ax, title in zip(axes, ["D logit on fakes", "D logit on reals", "gap (real - fake)"]):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.axhline(0, color="gray", lw=0.5)
    axes[0].legend()
    fig.suptitle(f"mean D logit per D step (EMA 0.9 over logs every 10 steps, mean of seeds {seeds})")
    fig.tight_layout()
    fig.savefig(IMG / "clr_fairness.png", dpi=120)
    plt.close(fig)
    # the seed-0 sample grids side by side
    grids = [(IMG / f"clr_samples_{l1:g}_{l2:g}.png", (l1, l2)) for l1, l2 in PAIRS]
    if all(path.exists() for path, _ in grids):
        fig, axes = plt.subplots(1, len(grids), figsize=(3.5 * len(grids), 3.8))
        for ax, (path, (l1, l2)) in zip(axes, grids):
            ax.imshow(plt.imread(path))
            ax.set_title(f"lambda = ({l1:g}, {l2:g}), seed 0")
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(IMG / "clr_samples.png", dpi=90)
        plt.close(fig)


def summary(results: list[dict]) -> dict:
    table = {}
    for l1, l2 in PAIRS:
        rs = [r for r in results if (r["lambda_1"], r["lambda_2"]) == (l1, l2)]
        gaps = [np.mean(np.asarray(r["curve"]["d/real"][-10:]) - np.asarray(r["curve"]["d/fake"][-10:]))
                for r in rs]
        table[f"({l1:g}, {l2:g})"] = {
            "fid": [round(r["fid"], 2) for r in rs], "fid_mean": round(float(np.mean([r["fid"] for r in rs])), 2),
            "fid_std": round(float(np.std([r["fid"] for r in rs])), 2),
            "probe_full": [round(r["probe"]["full"], 3) for r in rs],
            "probe_full_mean": round(float(np.mean([r["probe"]["full"] for r in rs])), 3),
            "probe_10_per_class": [round(r["probe"]["10_per_class"], 3) for r in rs],
            "probe_10_per_class_mean": round(float(np.mean([r["probe"]["10_per_class"] for r in rs])), 3),
            "final_gap_mean": round(float(np.mean(gaps)), 3)}
    rand = [r["probe_random_init"] for r in results if "probe_random_init" in r]
    table["real-vs-real FID"] = round(real_vs_real_fid(), 2)
    table["random-init D probe"] = {
        "probe_full_mean": round(float(np.mean([p["full"] for p in rand])), 3),
        "probe_10_per_class_mean": round(float(np.mean([p["10_per_class"] for p in rand])), 3)}
    return table


def real_vs_real_fid(seed: int = 0) -> float:
    """The floor of the FID scale: two disjoint halves of the real digits, same feature space."""
    from gantk import Pipeline
    from gantk.metrics.features import DigitsFeatures
    from gantk.metrics.fid import fid

    x, _ = Pipeline.from_spec(spec(0, 0, 0, 1)).real_data()
    feats = DigitsFeatures(x.shape[1])(x, {"embedding"})["embedding"]
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)).numpy()
    half = len(x) // 2
    return fid(feats[order[:half]], feats[order[half:]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "examples" / "clr" / "results.json")
    ap.add_argument("--replot", action="store_true", help="redo summary and figures from --out")
    a = ap.parse_args()
    if a.replot:
        results = json.loads(a.out.read_text())["runs"]
        print(json.dumps(summary(results), indent=1))
        figures(results, sorted({r["seed"] for r in results}))
        return
    jobs = [(l1, l2, s, a.steps) for s in a.seeds for l1, l2 in PAIRS]
    with ProcessPoolExecutor(a.workers) as pool:
        results = list(pool.map(run, jobs))
    a.out.write_text(json.dumps({"runs": results}, indent=1))  # raw runs first, then the summary
    table = summary(results)
    print(json.dumps(table, indent=1))
    print("feature space:", results[0]["feature_space"])
    a.out.write_text(json.dumps({"summary": table, "runs": results}, indent=1))
    figures(results, a.seeds)


if __name__ == "__main__":
    main()
