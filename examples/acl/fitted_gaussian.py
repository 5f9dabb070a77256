"""A stronger baseline for ACL-AE: decode codes drawn from a Gaussian fitted to the encoder's codes.

ACL-AE learns a code generator G_z that maps N(0, I) onto the autoencoder's code distribution.
The simplest ex-post alternative fits N(mean, covariance) to the codes E(x) of the training
images and decodes draws from it. For each ACL-AE run of the ACL-AE sweep this replaces G_z by
that fitted affine map (z -> mean + L z, L the Cholesky factor of the covariance) and scores the
decodes like the sweep does (FID, PRDC, confidence; 5,000 samples, evaluation seed 0); it also
prints the per-dimension spread of E(x) and of G_z(z). Nothing is written to the run directories.

    gantk sweep examples/sweeps/repro_acl_ae_mnist5k.toml --out runs/repro_acl_ae_mnist5k --jobs 1
    python examples/acl/fitted_gaussian.py runs/repro_acl_ae_mnist5k
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gantk import Pipeline
from gantk.sweeping.summary import mean_std
from gantk_plugins.acl import CodeGenerator

KEYS = ("fid", "precision", "recall", "density", "coverage", "confident_share")


class FittedGaussian(torch.nn.Module):
    def __init__(self, codes: torch.Tensor) -> None:
        super().__init__()
        self.mean = codes.mean(0)
        cov = torch.cov(codes.T) + 1e-6 * torch.eye(codes.shape[1])
        self.chol = torch.linalg.cholesky(cov)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.mean + z @ self.chol.T


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", help="the --out of the ACL-AE sweep")
    ap.add_argument("--cell", default="sampling=acl-ae")
    ap.add_argument("--n", type=int, default=5000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    runs = sorted((Path(args.sweep_dir) / args.cell).glob("seed_*"))
    if not runs:
        raise SystemExit(f"no runs under {Path(args.sweep_dir) / args.cell}: run the sweep first")
    rows = []
    for run in runs:
        pipe = Pipeline.load(run, device="cpu")
        gen = next(c for c in pipe.components if isinstance(c, CodeGenerator))
        pipe.backbone.eval()
        gen.eval()
        with torch.no_grad():
            codes = torch.cat([pipe.backbone.encode(b) for b in pipe.real_data()[0].split(500)])
            gz = gen.net(torch.randn(len(codes), codes.shape[1]))
        gen.net = FittedGaussian(codes)
        res = pipe.evaluate(["fid", "prdc", "confidence"], n=args.n, seed=0, progress=False)
        row = {k: float(res[k]) for k in KEYS}
        row["code_std"] = [round(v, 3) for v in codes.std(0).tolist()]
        row["gz_std"] = [round(v, 3) for v in gz.std(0).tolist()]
        rows.append(row)
        print(run.name, json.dumps(row), flush=True)
    for k in KEYS:
        m, sd = mean_std([r[k] for r in rows])
        print(f"{k}: {m:.4g} +- {sd:.2g} over {len(rows)} run(s)")


if __name__ == "__main__":
    main()
