"""Images per second of training and of sampling: stylegan2 at 32/64/128 px, dcgan and resnet at
32 px, fp32 against bf16, 1 process against N (one per GPU), with the ratios.

    python benchmarks/gpu_throughput.py                 # every GPU of this machine, all configs
    python benchmarks/gpu_throughput.py --gpus 4 --configs stylegan2-64,dcgan-32 --steps 50
    python benchmarks/gpu_throughput.py --device cpu --gpus 2 --configs dcgan-32 --steps 3 \
        --batch 16 --sample-n 64                        # a smoke test of the script on CPU (gloo)
    python benchmarks/gpu_throughput.py --quick         # < 2 min: gantk against the references

``--quick`` (benchmarks/throughput_quick.py) is what to run first when a GPU is at hand: one
process, dcgan 32 px, resnet 32 px, stylegan2 32 and 64 px, each against the hand-written
reference nets of benchmarks/references/ at equal configuration, for fp32, bf16, channels_last
and train.compile where it applies, side by side, with the ratio gantk / reference.

The parent launches ``torchrun --standalone --nproc_per_node=K`` for K = 1 and K = N on this same
script (``--worker``); each worker trains every config on random 8-bit images written to a temp
folder (``data=image_folder``, streamed through the DataLoader), with ``--batch`` as the global
batch, ``--warmup`` untimed steps then ``--steps`` timed ones, and samples ``--sample-n`` images
split over the ranks. Networks are the backbones' defaults. Results go to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {"stylegan2-32": ("stylegan2", 32), "stylegan2-64": ("stylegan2", 64),
           "stylegan2-128": ("stylegan2", 128), "dcgan-32": ("dcgan", 32),
           "resnet-32": ("resnet", 32)}


def _images(folder: Path, n: int, side: int) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
            folder / f"{i:05d}.png")


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def worker(args: argparse.Namespace) -> None:
    import torch

    from gantk import Pipeline
    from gantk.train import distributed

    results = []
    for name in args.configs.split(","):
        backbone, side = CONFIGS[name]
        folder = Path(args.data) / f"{side}"
        if distributed.is_main() and not folder.exists():
            _images(folder, args.images, side)
        for precision in ("fp32", "bf16"):
            spec = {"seed": 0, "backbone": {"name": backbone},
                    "data": {"name": "image_folder", "root": str(folder), "resolution": side},
                    "train": {"steps": args.warmup + args.steps, "batch_size": args.batch,
                              "precision": precision, "device": args.device,
                              "workers": args.workers}}
            pipe = Pipeline.from_spec(spec)  # joins the process group on the first build
            distributed.barrier()  # rank 0 has written the images
            pipe.train(steps=args.warmup, progress=False)
            _sync(pipe.device)
            distributed.barrier()
            t0 = time.perf_counter()
            pipe.train(steps=args.steps, progress=False)
            _sync(pipe.device)
            distributed.barrier()
            train_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            with pipe.trainer.precision.autocast():
                for _ in pipe.sample_batches(args.sample_n, batch_size=args.batch,
                                             split=pipe.world.size > 1):
                    pass
            _sync(pipe.device)
            distributed.barrier()
            sample_s = time.perf_counter() - t0
            results.append({"config": name, "precision": precision, "world": pipe.world.size,
                            "train_img_per_s": args.steps * args.batch / train_s,
                            "sample_img_per_s": args.sample_n / sample_s})
    if distributed.is_main():
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        Path(args.out).write_text(json.dumps({"device": device, "results": results}, indent=2))
    distributed.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--gpus", type=int, default=None, help="N (default: every visible GPU)")
    p.add_argument("--quick", action="store_true",
                   help="one process, gantk against the references, < 2 min (throughput_quick.py)")
    p.add_argument("--configs", default=None, help="default: all (" + ",".join(CONFIGS) + "; "
                   "--quick: dcgan-32,resnet-32,stylegan2-32,stylegan2-64)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=None,
                   help="global batch (default 64; --quick: each configuration's own)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 30; --quick: 10 "
                   "per round)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default 5; --quick: 3)")
    p.add_argument("--sample-n", type=int, default=2048)
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--out", default="gpu_throughput.json")
    p.add_argument("--data", default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import throughput_quick

    throughput_quick.add_arguments(p)
    args = p.parse_args()
    if args.quick:
        args.steps, args.warmup = args.steps or 10, args.warmup or 3
        sys.exit(throughput_quick.quick(args))
    args.configs = args.configs or ",".join(CONFIGS)
    args.batch, args.steps, args.warmup = args.batch or 64, args.steps or 30, args.warmup or 5
    if args.worker:
        return worker(args)
    import torch

    n = args.gpus or (torch.cuda.device_count() if args.device == "cuda" else 1)
    if args.device == "cuda" and n < 1:
        sys.exit("no GPU is visible; use --device cpu for a smoke test")
    data = args.data or tempfile.mkdtemp(prefix="gantk-bench-")
    runs = {}
    for k in sorted({1, n}):
        out = Path(data) / f"world{k}.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={k}", __file__, "--worker", "--out", str(out), "--data", data]
        for key in ("configs", "device", "batch", "steps", "warmup", "sample_n", "images",
                    "workers"):
            cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        runs[k] = json.loads(out.read_text())
    rows = {(r["config"], r["precision"], r["world"]): r for k in runs for r in runs[k]["results"]}
    print(f"device: {runs[1]['device']}; global batch {args.batch}, {args.steps} timed steps")
    print(f"{'config':15} {'prec':5} {'procs':>5} {'train img/s':>12} {'sample img/s':>13} "
          f"{'bf16/fp32':>10} {'N/1':>6}")
    for (config, precision, world), r in rows.items():
        fp32 = rows[(config, "fp32", world)]["train_img_per_s"]
        one = rows[(config, precision, 1)]["train_img_per_s"]
        print(f"{config:15} {precision:5} {world:5d} {r['train_img_per_s']:12.1f} "
              f"{r['sample_img_per_s']:13.1f} {r['train_img_per_s'] / fp32:10.2f} "
              f"{r['train_img_per_s'] / one:6.2f}")
    Path(args.out).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
