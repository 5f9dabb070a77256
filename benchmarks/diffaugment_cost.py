"""Cost of DiffAugment's full policy: forward + backward of ``diff_augment`` on one batch.

    OMP_NUM_THREADS=1 python benchmarks/diffaugment_cost.py [--batch 64 --channels 1 --size 16]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gantk_plugins.augment import diff_augment


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.channels, args.size, args.size, requires_grad=True)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            diff_augment(x, ["color", "translation", "cutout"]).sum().backward()
        times.append((time.perf_counter() - t0) / args.repeats * 1000)
    print(f"full policy, forward + backward, batch {tuple(x.shape)}: median {statistics.median(times):.2f} ms "
          f"(min {min(times):.2f}) over 5 rounds of {args.repeats}")


if __name__ == "__main__":
    main()
