"""Step time of ``+ lis`` (and ``+ reverser`` iterative) against the plain stack, in one process.

The paper calls LIS modules "almost free in terms of computation and memory" (Sec. 1, 2.3). All
stacks are built from the same spec and seed and timed in alternating rounds (so machine noise hits
them alike); the figure reported is the median seconds per training step and its ratio to the
plain stack's median.

    python benchmarks/lis_step_time.py [--width 16] [--resolution 16] [--batch 64] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from gantk import Pipeline

STACKS = {
    "plain": None,
    "+ lis (N_R=1)": {"name": "lis", "num_modules": 1},
    "+ lis (N_R=3)": {"name": "lis", "num_modules": 3},
    "+ reverser iterative (N_R=3)": {"name": "reverser", "mode": "iterative", "iterations": 3},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--latent-dim", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipes = {}
    for name, method in STACKS.items():
        spec = {"stack": "backbone=dcgan + loss=ns + data=digits"
                         + (f" + {method['name']}" if method else ""),
                "seed": 0, "backbone": {"width": args.width, "latent_dim": args.latent_dim},
                "data": {"resolution": args.resolution},
                "train": {"batch_size": args.batch, "device": "cpu", "log_every": 1000,
                          "sample_every": 0, "ckpt_every": 0}}
        if method:
            spec["methods"] = [method]
        pipes[name] = Pipeline.from_spec(spec)
        pipes[name].train(steps=2, progress=False)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in pipes}
    for _ in range(args.rounds):
        for name, pipe in pipes.items():
            t0 = time.perf_counter()
            pipe.train(steps=args.steps, progress=False)
            times[name].append((time.perf_counter() - t0) / args.steps)
    base = statistics.median(times["plain"])
    out = {"settings": vars(args), "torch": torch.__version__}
    for name, ts in times.items():
        med = statistics.median(ts)
        out[name] = {"median_s_per_step": round(med, 5), "ratio_to_plain": round(med / base, 3),
                     "min": round(min(ts), 5), "max": round(max(ts), 5)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
