"""DiffAugment against the plain stack: train both on the same data with several seeds, score each
with gantk's evaluation, print a table and write JSON (the numbers in docs/methods/diffaugment.md).

    python scripts/compare_diffaugment.py --stack examples/stacks/digits.toml --seeds 0 1 2 \
        --steps 2000 --n 2000 --out diffaugment_digits.json [--set data.limit=...]

Each run trains in memory (no run directory); evaluation uses ``evaluate(..., seed=0)`` with the
data's default feature net (the shipped digits classifier on digits).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from gantk import Pipeline


def run(stack: str, seed: int, steps: int, n: int, augment: bool, overrides: list[str]) -> dict:
    sets = [f"seed={seed}", f"train.steps={steps}", "train.sample_every=0", "train.ckpt_every=0",
            *overrides]
    if augment:
        sets.append('methods=[{name="diffaugment"}]')
    torch.set_num_threads(1)
    pipe = Pipeline.from_spec(stack, sets, device="cpu")
    t0 = time.perf_counter()
    pipe.train(progress=False)
    train_s = time.perf_counter() - t0
    res = pipe.evaluate(["fid", "kid", "modes"], n=n, seed=0)
    return {"seed": seed, "diffaugment": augment, "train_seconds": round(train_s, 1),
            **{k: v for k, v in res.items() if k in ("fid", "kid", "modes_covered", "feature_space")}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stack", default="examples/stacks/digits.toml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--out", default="diffaugment_compare.json")
    args = ap.parse_args()
    rows = []
    for seed in args.seeds:
        for augment in (False, True):
            rows.append(run(args.stack, seed, args.steps, args.n, augment, args.set))
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for augment in (False, True):
        fids = [r["fid"] for r in rows if r["diffaugment"] == augment]
        summary["diffaugment" if augment else "plain"] = {
            "fid_mean": statistics.mean(fids), "fid_std": statistics.stdev(fids) if len(fids) > 1 else 0.0,
            "fids": fids}
    print(json.dumps(summary, indent=2))
    with open(args.out, "w") as fh:
        json.dump({"args": vars(args), "rows": rows, "summary": summary}, fh, indent=2)


if __name__ == "__main__":
    main()
