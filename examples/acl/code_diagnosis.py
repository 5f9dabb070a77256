"""Where does ACL-GAN lose diversity on digits? Train the ``mlp`` ACL-GAN of examples/acl/digits.py
and score the same G fed three kinds of codes: G_z(z) (ACL's samples), E(x) of random real images
(the codes G_z is trying to imitate: an upper bound for a perfect code generator) and N(0, I).
Also prints the energy distance between G_z(z) and E(x) and their per-dimension spreads.

    python examples/acl/code_diagnosis.py [--steps 3000] [--seed 0]

Writes docs/methods/img/acl_code_diagnosis.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gantk import Pipeline
from gantk_plugins.acl import CodeGenerator, CodeLearning

OUT = Path(__file__).resolve().parents[2] / "docs" / "methods" / "img" / "acl_code_diagnosis.json"
KEEP = ("fid", "precision", "recall", "coverage", "modes_covered")


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    pipe = Pipeline.from_spec({
        "stack": "backbone=mlp + loss=ns + data=digits + acl", "seed": args.seed,
        "backbone": {"hidden": [128, 256], "latent_dim": 16}, "data": {"resolution": 8},
        "train": {"steps": args.steps, "batch_size": 64, "optimizer": "rmsprop", "lr_g": 5e-4,
                  "lr_d": 5e-4, "device": "cpu"}})
    pipe.train(progress=False)
    gen = next(c for c in pipe.components if isinstance(c, CodeGenerator))
    learn = next(c for c in pipe.components if isinstance(c, CodeLearning))
    x = pipe.real_data()[0]
    out: dict = {"settings": vars(args)}
    with torch.no_grad():
        real_codes = learn.encode(x, pipe.backbone)
        fake_codes = gen.net(torch.randn(len(x), 16))
    out["code_energy_distance"] = round(energy_distance(real_codes, fake_codes), 4)
    out["real_code_std_mean"] = round(float(real_codes.std(0).mean()), 4)
    out["fake_code_std_mean"] = round(float(fake_codes.std(0).mean()), 4)

    def score(label: str) -> None:
        ev = pipe.evaluate(metrics=["fid", "prdc", "modes"], n=args.n, seed=args.seed)
        out[label] = {k: round(float(ev[k]), 4) for k in KEEP}
        print(label, out[label], flush=True)

    score("G(G_z(z))")
    original = gen.forward

    def oracle(z, ctx):  # codes of random real images in place of G_z(z)
        idx = torch.randint(len(x), (z.shape[0],))
        return learn.encode(x[idx].to(z.device), pipe.backbone)

    gen.forward = oracle
    score("G(E(x)), x real")
    gen.forward = lambda z, ctx: z
    score("G(z), z ~ N(0, I)")
    gen.forward = original
    OUT.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
