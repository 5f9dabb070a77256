"""The per-step cost of the AdvLatGAN components against the plain stack, in one run.

For each stack (plain, advlat_qua, advlat_div, msgan; dcgan on digits at 16 px, width 16, batch
64) the script counts forward passes of G and of D (calls of ``D.features``) per training step and
times the step, then compares with registry.toml's declared ``cost``. Every extra forward of a
search is followed by one backward to z; the extra forward of the mode-seeking pair is followed by
the G update's backward.

    .venv/bin/python benchmarks/advlat_cost.py [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gantk import Pipeline, get_registry

STACKS = ["plain", "advlat_qua", "advlat_div", "msgan"]


class Counter:
    """Counts G forwards (forward hook) and D forwards (a wrapper around ``D.features``)."""

    def __init__(self, pipe: Pipeline) -> None:
        self.g = self.d = 0
        pipe.backbone.generator.register_forward_hook(self._g_hook)
        D = pipe.backbone.discriminator
        inner = D.features

        def features(x, y=None):
            self.d += 1
            return inner(x, y)

        D.features = features  # instance attribute: D.forward calls self.features -> counted

    def _g_hook(self, module, args, out) -> None:
        self.g += 1


def measure(method: str, steps: int, seed: int) -> dict:
    stack = "backbone=dcgan + loss=ns + data=digits" + ("" if method == "plain" else f" + {method}")
    pipe = Pipeline.from_spec({"stack": stack, "seed": seed,
                               "backbone": {"width": 16, "latent_dim": 32},
                               "data": {"resolution": 16},
                               "train": {"batch_size": 64, "ema_decay": 0.0}})
    pipe.train(steps=2, progress=False)  # warm-up (data load, allocator)
    count = Counter(pipe)
    t0 = time.perf_counter()
    pipe.train(steps=steps, progress=False)
    dt = (time.perf_counter() - t0) / steps
    return {"method": method, "g_forwards_per_step": count.g / steps,
            "d_forwards_per_step": count.d / steps, "seconds_per_step": dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [measure(m, args.steps, args.seed) for m in STACKS]
    base = rows[0]
    registry = get_registry()
    for r in rows:
        r["extra_g_forwards"] = r["g_forwards_per_step"] - base["g_forwards_per_step"]
        r["extra_d_forwards"] = r["d_forwards_per_step"] - base["d_forwards_per_step"]
        r["time_vs_plain"] = r["seconds_per_step"] / base["seconds_per_step"]
        entry = registry.entries.get(r["method"])
        r["declared"] = {k: v for k, v in (entry.cost if entry else {}).items()
                         if k.startswith("extra_")}
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
