"""What the checkpoint safety checks cost: the finiteness check before every save and the SHA-256
content digest (computed on save, verified on load), against the whole save and load.

For each backbone (default sizes unless given) the script builds the stack on CPU, then times
``check_finite`` over every module, ``tensor_digest`` over every tensor of a checkpoint, a full
``save_checkpoint`` (which includes both) and a full ``Checkpoint`` load (which verifies the digest).

    .venv/bin/python benchmarks/checkpoint_safety_cost.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from gantk import Pipeline
from gantk.store.checkpoint import Checkpoint, check_finite, tensor_digest

STACKS = {
    "mlp (ring)": {"stack": "backbone=mlp + data=ring"},
    "dcgan w64 (digits 32 px)": {"stack": "backbone=dcgan + data=digits",
                                 "data": {"resolution": 32}},
    "resnet (digits 32 px)": {"stack": "backbone=resnet + data=digits",
                              "data": {"resolution": 32}},
}


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for label, spec in STACKS.items():
        pipe = Pipeline.from_spec({**spec, "train": {"device": "cpu"}})
        pipe.trainer  # optimisers exist, so their state is part of the checkpoint
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "step_00000000.safetensors"
            save = best_of(lambda: pipe.save_checkpoint(path), args.repeat)
            load = best_of(lambda: Checkpoint(path), args.repeat)
            ckpt = Checkpoint(path)
            digest = best_of(lambda: tensor_digest(ckpt.tensors), args.repeat)
            finite = best_of(lambda: check_finite(pipe.modules()), args.repeat)
            size = path.stat().st_size
        rows.append({"stack": label, "mb": round(size / 2**20, 1), "save_s": round(save, 4),
                     "load_s": round(load, 4), "digest_s": round(digest, 4),
                     "finite_s": round(finite, 4)})
        print(json.dumps(rows[-1]))


if __name__ == "__main__":
    main()
