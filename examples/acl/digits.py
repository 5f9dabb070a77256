"""ACL on digits: ACL-GAN against the same GAN without ACL, and ACL-AE against a plain
autoencoder's samples (the same trained autoencoder decoding Gaussian noise), with sample grids,
interpolation grids (Fig. 10) and FID / precision / recall / coverage / digit classes in the shipped
digits classifier's feature space.

    python examples/acl/digits.py [--gan-steps 3000] [--ae-steps 800] [--seeds 0 1] [--n 2000]
    python examples/acl/digits.py --gan-backbone dcgan --gan-steps 800 --seeds 0 --skip-ae

GAN nets: ``mlp`` on the digits at their native 8 px (hidden 128, 256; RMSprop 5e-4), the setting
in which the plain GAN trains on a CPU budget; ``--gan-backbone dcgan`` runs DCGAN at 16 px, width
16, batch norm off, Adam 2e-4 (both with and without ACL it collapsed within 800 steps here).
ACL-AE: the autoencoder backbone at 16 px, width 16, 10-d codes. Its encoder and decoder are
trained by the pixel reconstruction alone (L_Z trains only G_z and D_c), so one ACL-AE run holds the
plain autoencoder too: sampling it with G_z switched off (N(0, I) codes into the decoder) is the
"plain autoencoder" baseline.

Writes docs/methods/img/acl_digits_*.png and acl_digits_<backbone>.json; prints the numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gantk import Pipeline
from gantk.sample.viz import save_grid
from gantk_plugins.acl import CodeGenerator, interpolation_rows

IMG = Path(__file__).resolve().parents[2] / "docs" / "methods" / "img"
KEEP = ("fid", "precision", "recall", "density", "coverage", "modes_covered", "reverse_kl")

GAN_NETS = {
    "mlp": ({"hidden": [128, 256], "latent_dim": 16}, 8,
            {"optimizer": "rmsprop", "lr_g": 5e-4, "lr_d": 5e-4}),
    # batch_norm off, as in the documented runs: the backbone then ended D in a BatchNorm over 1x1
    # maps at 16 px, which left D blind (it no longer does; see docs/methods/acl.md)
    "dcgan": ({"width": 16, "latent_dim": 16, "batch_norm": False}, 16,
              {"lr_g": 2e-4, "lr_d": 2e-4, "betas": [0.5, 0.999]}),
}


def spec(stack: str, backbone: dict, resolution: int, train: dict, steps: int, seed: int) -> dict:
    return {"stack": stack, "seed": seed, "backbone": backbone, "data": {"resolution": resolution},
            "train": {"steps": steps, "batch_size": 64, "device": "cpu", **train}}


def score(pipe: Pipeline, n: int, seed: int) -> dict:
    out = pipe.evaluate(metrics=["fid", "prdc", "modes"], n=n, seed=seed)
    return {k: round(float(out[k]), 4) for k in KEEP if k in out}


def run(name: str, s: dict) -> Pipeline:
    t = time.time()
    pipe = Pipeline.from_spec(s)
    logs = pipe.train(progress=False)
    print(f"[{name}] {pipe.spec.shorthand} seed {s['seed']}: {pipe.step} steps in "
          f"{time.time() - t:.0f}s; last " + ", ".join(f"{k}={v:.3f}" for k, v in logs.items()
                                                       if "/" in k), flush=True)
    return pipe


def grids(pipe: Pipeline, prefix: str, *, interp: bool) -> None:
    torch.manual_seed(123)
    save_grid(pipe.sample(64), IMG / f"{prefix}.png", nrow=8)
    if interp:
        x = pipe.real_data()[0]
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))[:12]
        rows = interpolation_rows(pipe, x[idx[:6]], x[idx[6:]], steps=8)
        save_grid(rows, IMG / f"{prefix}_interp.png", nrow=10)


def mean(rows: list[dict]) -> dict:
    return {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in rows[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gan-backbone", choices=sorted(GAN_NETS), default="mlp")
    ap.add_argument("--gan-steps", type=int, default=3000)
    ap.add_argument("--ae-steps", type=int, default=800)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--n", type=int, default=2000, help="samples per score")
    ap.add_argument("--skip-ae", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    IMG.mkdir(parents=True, exist_ok=True)
    bb, res, train = GAN_NETS[args.gan_backbone]
    tag = f"{args.gan_backbone}{res}"
    results: dict = {"settings": {**vars(args), "gan_backbone_options": bb, "gan_resolution": res,
                                  "gan_train": train, "batch_size": 64}}
    base = f"backbone={args.gan_backbone} + loss=ns + data=digits"
    runs = {"gan": base, "acl_gan": base + " + acl"}
    for seed in args.seeds:
        for name, stack in runs.items():
            pipe = run(name, spec(stack, bb, res, train, args.gan_steps, seed))
            results[f"{tag}/{name}/seed{seed}"] = score(pipe, args.n, seed)
            print(f"[{name} seed {seed}] {results[f'{tag}/{name}/seed{seed}']}", flush=True)
            if seed == args.seeds[0]:
                grids(pipe, f"acl_digits_{tag}_{name}", interp=name == "acl_gan")
        if args.skip_ae:
            continue
        ae = spec("backbone=autoencoder + data=digits + acl", {"width": 16, "latent_dim": 10}, 16,
                  {"lr_g": 2e-4, "lr_d": 2e-4}, args.ae_steps, seed)
        pipe = run("acl_ae", ae)
        results[f"ae16/acl_ae/seed{seed}"] = score(pipe, args.n, seed)
        if seed == args.seeds[0]:
            grids(pipe, "acl_digits_ae16_acl_ae", interp=True)
        gen = next(c for c in pipe.components if isinstance(c, CodeGenerator))
        gen.phases = frozenset({"d", "g"})  # the plain autoencoder: decode N(0, I) codes
        results[f"ae16/plain_ae/seed{seed}"] = score(pipe, args.n, seed)
        if seed == args.seeds[0]:
            grids(pipe, "acl_digits_ae16_plain_ae", interp=False)
        for k in ("acl_ae", "plain_ae"):
            print(f"[{k} seed {seed}] {results[f'ae16/{k}/seed{seed}']}", flush=True)
    groups = sorted({k.rsplit("/", 1)[0] for k in results if "/seed" in k})
    for g in groups:
        results[f"{g}/mean"] = mean([results[f"{g}/seed{s}"] for s in args.seeds])
    (IMG / f"acl_digits_{tag}.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k.endswith("/mean")}, indent=2))


if __name__ == "__main__":
    main()
