"""Sign agreement of grad_z between the stack's ns generator loss and Eq. 5's log(1 - D(G(z))).

Both are per-sample decreasing functions of D's logit, so with every logit depending on its own
latent only (eval mode) the I-FGSM steps are identical; train-mode BatchNorm couples the batch and
the signs can differ. Prints the share of latent coordinates whose gradient signs agree, for
untrained `dcgan` nets at 16 px, batch 64, one net per seed.

    python benchmarks/advlat_objective_signs.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

from gantk import Pipeline


def agreement(backbone, z: torch.Tensor) -> float:
    z = z.clone().requires_grad_(True)
    logits = backbone.discriminator(backbone.generator(z)).reshape(-1)
    g_ns, = torch.autograd.grad(F.softplus(-logits).mean(), z, retain_graph=True)  # ns L_G
    g_eq5, = torch.autograd.grad(-F.softplus(logits).mean(), z)  # log(1 - sigmoid(logit))
    return (torch.sign(g_ns) == torch.sign(g_eq5)).float().mean().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    train, evals = [], []
    for seed in range(args.seeds):
        pipe = Pipeline.from_spec({"stack": "backbone=dcgan + loss=ns + data=digits", "seed": seed,
                                   "data": {"resolution": 16}, "train": {"device": "cpu"}})
        torch.manual_seed(seed)
        z = torch.randn(64, pipe.backbone.latent_dim)
        pipe.backbone.train()
        train.append(agreement(pipe.backbone, z))
        pipe.backbone.eval()
        evals.append(agreement(pipe.backbone, z))
    print(f"sign agreement, train mode: mean {statistics.mean(train):.4f} "
          f"(min {min(train):.4f}, max {max(train):.4f}); eval mode: mean {statistics.mean(evals):.4f}")


if __name__ == "__main__":
    main()
