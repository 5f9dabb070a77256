"""What bf16/fp16 autocast does to the terms that differentiate twice and to the I-FGSM search.

    python benchmarks/precision_effects.py [--raw-fp16]

On the tiny digits dcgan of tests/conftest.py (seed 0) and a tiny stylegan2: gp, r1 and the path
length under each precision against float32 (value and the cosine of the parameter gradient),
and one I-FGSM step of 256 latents (the share of coordinates that moved, the share with fp32's
sign). ``--raw-fp16`` turns off gantk's float32 fallback for fp16 (gantk.train.precision.
float32_under_fp16) to show why it is there. CPU autocast; numbers in docs/distributed.md.
"""

from __future__ import annotations

import argparse
import contextlib

import torch

import gantk.train.precision as precision
from gantk import Pipeline
from gantk.train.precision import Precision

DIGITS = {"stack": "backbone=dcgan + loss=ns + data=digits", "seed": 0,
          "backbone": {"width": 4, "latent_dim": 16}, "data": {"resolution": 16},
          "train": {"batch_size": 16, "device": "cpu"}}
STYLEGAN2 = {"seed": 0, "backbone": {"name": "stylegan2", "latent_dim": 8, "style_dim": 8,
                                     "n_mlp": 2, "channel_base": 64, "channel_max": 8},
             "data": {"name": "digits", "resolution": 16}, "train": {"device": "cpu"}}


def value_and_grads(fn, params, mode: str):
    torch.manual_seed(5)
    with Precision(mode, torch.device("cpu")).autocast():
        value = fn()
    grads = torch.autograd.grad(value, params, allow_unused=True)
    flat = torch.cat([(torch.zeros_like(p) if g is None else g).flatten()
                      for p, g in zip(params, grads)])
    return float(value.detach()), flat


def compare(name: str, fn, params) -> None:
    v32, g32 = value_and_grads(fn, params, "fp32")
    for mode in ("bf16", "fp16"):
        v, g = value_and_grads(fn, params, mode)
        cos = float(torch.nn.functional.cosine_similarity(g, g32, dim=0))
        print(f"{name:12} {mode}: value {v:.4g} (fp32 {v32:.4g}, rel {abs(v - v32) / abs(v32):.2%})"
              f", gradient cosine to fp32 {cos:.4f}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--raw-fp16", action="store_true")
    args = p.parse_args()
    if args.raw_fp16:
        precision.float32_under_fp16 = contextlib.nullcontext  # what the plugins call
        import gantk_plugins.advlat.search as search
        import gantk_plugins.backbones.stylegan2_reg as reg
        import gantk_plugins.losses as losses
        for mod in (search, reg, losses):
            mod.float32_under_fp16 = contextlib.nullcontext
    from gantk_plugins.advlat.search import ifgsm
    from gantk_plugins.backbones.stylegan2_reg import path_lengths
    from gantk_plugins.losses import gradient_penalty, r1_penalty

    pipe = Pipeline.from_spec(DIGITS, device="cpu")
    D = pipe.backbone.discriminator
    real = pipe.real_data()[0][:16]
    torch.manual_seed(1)
    fake = pipe.sample(16)
    d_params = [q for q in D.parameters() if q.requires_grad]
    compare("gp", lambda: gradient_penalty(D, real, fake, None), d_params)
    compare("r1", lambda: r1_penalty(D, real, None), d_params)

    sg = Pipeline.from_spec(STYLEGAN2, device="cpu")
    G = sg.backbone.generator
    torch.manual_seed(2)
    z = sg.backbone.sample_latent(8)

    def pl():
        from gantk_plugins.backbones import stylegan2_reg
        with stylegan2_reg.float32_under_fp16():
            img, ws = G(z, None, return_ws=True)
            return path_lengths(img, ws).mean()

    compare("path_length", pl, [q for q in G.parameters() if q.requires_grad])

    bb, loss = pipe.backbone, pipe.loss
    pipe.train(steps=2, progress=False)
    torch.manual_seed(0)
    z0 = bb.sample_latent(256)
    bb.eval()

    def search(mode: str):
        with Precision(mode, torch.device("cpu")).autocast():
            return ifgsm(z0, lambda z: loss.g_loss(bb.discriminator(bb.generator(z, None), None)),
                         steps=1, step_size=0.01)

    z32 = search("fp32")
    for mode in ("bf16", "fp16"):
        zz = search(mode)
        same = float(((zz - z0).sign() == (z32 - z0).sign()).float().mean())
        print(f"{'I-FGSM':12} {mode}: {float((zz != z0).float().mean()):.1%} of coordinates moved,"
              f" {same:.1%} with fp32's sign")


if __name__ == "__main__":
    main()
