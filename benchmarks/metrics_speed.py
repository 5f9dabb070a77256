"""How long gantk's metrics take on CPU, and how the cost grows with the sample count.

    python benchmarks/metrics_speed.py                      # digits 16 px: 1k, 10k, 50k samples
    python benchmarks/metrics_speed.py --stacked            # stacked digits, real set grows with n
    python benchmarks/metrics_speed.py --sizes 1000,10000 --threads 2

The "generator" is a stand-in that needs no training: real digits shifted by up to a pixel plus
noise (its cost is reported apart, as generation). Each stage is timed the way ``evaluate`` runs
it: the feature nets over the real set and over the generated batches (500 at a time), then each
metric object from the registry on those arrays. The last line runs ``evaluate`` end to end for
10k samples with every default digits metric. Wall time depends on what else the machine runs,
so CPU time (process time, all threads) and the load average are printed too.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from gantk.metrics.evaluate import _assign_nets, _real_subset, default_metrics, evaluate, extract
from gantk.base.interfaces import DataInfo
from gantk.metrics import digits_classifier as dc
from gantk.stack.plugins import get_registry

METRICS = ["fid", "kid", "prdc", "jsd", "is", "modes"]


class StandInPipeline:
    """Digits (or stacked digits) at 16 px; samples are jittered, noisy real digits."""

    def __init__(self, stacked: bool, n_real: int, seed: int = 0) -> None:
        x = torch.from_numpy(dc.load_digits_arrays()[0])
        self.single = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
        self.stacked = stacked
        self.gen = torch.Generator().manual_seed(seed)
        channels = 3 if stacked else 1
        self.data_info = DataInfo(shape=(channels, 16, 16), num_classes=None if stacked else 10)
        self.spec = SimpleNamespace(data=SimpleNamespace(name="digits", options={"stacked": stacked}))
        self.device = torch.device("cpu")
        self._real = self._draw(n_real, noise=0.0, shift=False) if stacked else self.single

    def _draw(self, b: int, *, noise: float = 0.1, shift: bool = True) -> torch.Tensor:
        c = 3 if self.stacked else 1
        idx = torch.randint(len(self.single), (b, c), generator=self.gen)
        x = torch.cat([self.single[idx[:, i]] for i in range(c)], 1)
        if shift:
            x = torch.roll(x, shifts=(int(torch.randint(-1, 2, (1,), generator=self.gen)),
                                      int(torch.randint(-1, 2, (1,), generator=self.gen))),
                           dims=(2, 3))
        return (x + noise * torch.randn(x.shape, generator=self.gen)).clamp(-1, 1)

    def real_data(self):
        return self._real, None

    def sample_batches(self, n, *, batch_size=500, with_=None):
        done = 0
        while done < n:
            b = min(batch_size, n - done)
            done += b
            yield self._draw(b)


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        w, c = time.perf_counter(), time.process_time()
        out = (w - self.wall, c - self.cpu)
        self.wall, self.cpu = w, c
        return out


def run_size(n: int, stacked: bool, registry) -> dict[str, tuple[float, float]]:
    pipe = StandInPipeline(stacked, n_real=n)
    info = pipe.data_info
    objs = {m: registry.get(m, "metric", where=m).factory(None) for m in METRICS}
    needs = set().union(*(o.requires(info) for o in objs.values()))
    nets, _ = _assign_nets(needs, info, "digits", feature_net="digits", inception=None,
                           device="cpu")
    times: dict[str, tuple[float, float]] = {}
    clock = Clock()
    batches = list(pipe.sample_batches(n))  # generation apart from scoring, for the table only
    times["generate"] = clock.lap()
    real = extract(((_real_subset(pipe.real_data()[0], n, 0)[i:i + 500])
                    for i in range(0, min(n, len(pipe.real_data()[0])), 500)), nets)
    fake = extract(iter(batches), nets)
    del batches
    times["features"] = clock.lap()
    for name, obj in objs.items():
        obj(real, fake, info)
        times[name] = clock.lap()
    times["_n_real"] = (float(len(real)), 0.0)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--stacked", action="store_true", help="stacked digits (3 x 64-d features)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-end-to-end", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    registry = get_registry()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"gantk metrics on CPU: {'stacked ' if args.stacked else ''}digits 16 px, "
          f"torch threads {torch.get_num_threads()}, cores {os.cpu_count()}, "
          f"load average at start {os.getloadavg()[0]:.1f}")
    cols = ["generate", "features", *METRICS]
    print(f"{'n':>7} {'n_real':>7} {'clock':>5} " + " ".join(f"{c:>9}" for c in cols) +
          f" {'scoring':>9}")
    for n in sizes:
        t = run_size(n, args.stacked, registry)
        for i, clock in enumerate(("wall", "cpu")):
            scoring = sum(t[c][i] for c in cols[1:])
            print(f"{n:>7} {int(t['_n_real'][0]):>7} {clock:>5} " +
                  " ".join(f"{t[c][i]:>8.2f}s" for c in cols) + f" {scoring:>8.2f}s", flush=True)
    print("(wall: elapsed seconds; cpu: process time over all threads; 'scoring' = features + "
          "every metric; 'generate' is the stand-in generator's, not a GAN's)")
    if not args.no_end_to_end:
        pipe = StandInPipeline(args.stacked, n_real=10_000)
        metrics = default_metrics(pipe.data_info, "digits")
        clock = Clock()
        out = evaluate(pipe, metrics, n=10_000, feature_net="digits", seed=0)
        wall, cpu = clock.lap()
        print(f"evaluate(n=10000, metrics={','.join(metrics)}): {wall:.2f}s wall, {cpu:.2f}s cpu; "
              f"fid={out['fid']:.3f} kid={out['kid']:.4f} precision={out['precision']:.3f} "
              f"recall={out['recall']:.3f} density={out['density']:.3f} "
              f"coverage={out['coverage']:.3f} jsd={out['jsd']:.4f} is={out['is']:.2f} "
              f"modes={out['modes_covered']:.0f}/{out['modes_total']:.0f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak:.0f} MiB; load average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
