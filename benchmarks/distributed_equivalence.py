"""How far 2 processes (gloo, CPU) end from 1 process after the same steps, and the wall time.

    python benchmarks/distributed_equivalence.py [--steps 50] [--stack ring|digits]

Same seed, same global batch (64 ring / 32 digits) and data order. ``ring`` is the mlp backbone
(no BatchNorm): the two runs differ by float summation order only. ``digits`` is dcgan, whose
BatchNorm normalises each rank's half batch: expect a real difference there (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

SPECS = {
    "ring": {"stack": "backbone=mlp + loss=ns + data=ring", "seed": 0,
             "backbone": {"hidden": [64, 64]}, "data": {"per_mode": 500},
             "train": {"batch_size": 64, "device": "cpu"}},
    "digits": {"stack": "backbone=dcgan + loss=ns + data=digits", "seed": 0,
               "backbone": {"width": 8, "latent_dim": 16}, "data": {"resolution": 16},
               "train": {"batch_size": 32, "device": "cpu"}},
}


def _worker(rank: int, world: int, port: int, spec: dict, steps: int, out: str) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from gantk import Pipeline
    from gantk.train import distributed

    pipe = Pipeline.from_spec(spec, device="cpu")
    t0 = time.perf_counter()
    pipe.train(steps=steps, progress=False)
    if rank == 0:
        torch.save({"params": [p.detach() for p in pipe.backbone.parameters()],
                    "seconds": time.perf_counter() - t0}, out)
    distributed.shutdown()


def run(spec: dict, steps: int, world: int) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(Path(tempfile.mkdtemp()) / "params.pt")
    mp.spawn(_worker, args=(world, port, spec, steps, out), nprocs=world, join=True)
    return torch.load(out)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--stack", choices=sorted(SPECS), default="ring")
    args = p.parse_args()
    spec = SPECS[args.stack]
    one, two = run(spec, args.steps, 1), run(spec, args.steps, 2)
    diff = max(float((a - b).abs().max()) for a, b in zip(one["params"], two["params"]))
    scale = max(float(a.abs().max()) for a in one["params"])
    print(f"{args.stack}: {args.steps} steps, max |theta_2proc - theta_1proc| = {diff:.3g} "
          f"(largest |theta| {scale:.3g}); wall {one['seconds']:.1f} s (1 proc) vs "
          f"{two['seconds']:.1f} s (2 procs)")


if __name__ == "__main__":
    main()
