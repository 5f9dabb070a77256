"""Why does the latent-consistency loss stay flat in the digits ablation? Trains the (5, 0.5) run of
experiments.py (seed 0, same spec) and measures, on 2000 fresh fakes G(z):

* phi's L1 to z against the L1 of predicting 0 (E|z| = 0.798 for z ~ N(0, 1));
* the R^2 of a ridge regression z ~ G(z) (pixels) and z ~ f(G(z)) (D's features) fitted on 1500
  fakes and scored on 500: how much of z a linear read-out of the image / of D's features holds;
* the per-pixel standard deviation of G(z) over z (how strongly G's output depends on z).

    .venv/bin/python examples/clr/latent_recovery.py [--steps 400]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from experiments import make_pipe  # noqa: E402


def r2(x: torch.Tensor, z: torch.Tensor, n_train: int = 1500) -> float:
    from sklearn.linear_model import Ridge

    fit = Ridge(alpha=1.0).fit(x[:n_train].numpy(), z[:n_train].numpy())
    return float(fit.score(x[n_train:].numpy(), z[n_train:].numpy()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from gantk_plugins.clr import CLR

    pipe = make_pipe(5.0, 0.5, 0, a.steps)
    pipe.train(progress=False)
    bb = pipe.backbone
    (clr,) = [c for c in pipe.components if isinstance(c, CLR)]
    torch.manual_seed(7)
    z = bb.sample_latent(2000, device="cpu")
    with torch.no_grad():  # training mode, as in the D step
        x = torch.cat([bb.generator(z[i:i + 250]) for i in range(0, 2000, 250)])
        h = torch.cat([bb.discriminator.features(x[i:i + 250]) for i in range(0, 2000, 250)])
        phi = clr.phi(h)
    print(f"after {a.steps} steps (lambda = (5, 0.5), seed 0):")
    print(f"  L1(phi(G(z)), z) = {(phi - z).abs().mean():.3f}   predicting 0: {z.abs().mean():.3f}")
    print(f"  R^2 of ridge z ~ pixels of G(z):     {r2(x.flatten(1), z):.3f}")
    print(f"  R^2 of ridge z ~ D features f(G(z)): {r2(h, z):.3f}")
    print(f"  per-pixel std of G(z) over z: mean {x.std(0).mean():.3f} (images in [-1, 1])")


if __name__ == "__main__":
    main()
