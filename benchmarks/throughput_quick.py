"""``gpu_throughput.py --quick``: training img/s of gantk against the hand-written references, side
by side, on one device, in under two minutes.

For dcgan 32 px, resnet 32 px and stylegan2 at 32 and 64 px (the configurations of
benchmarks/backbone_parity.py: the same networks, batch, loss, optimiser and R1 for both), and for
each of fp32, bf16 autocast, channels_last and ``train.compile`` (where it applies: not with R1,
which differentiates D twice), it builds gantk's ``Pipeline`` and the reference nets of
benchmarks/references/ with a plain loop (Adam kept across rounds, the same lazy R1), warms both
up, then alternates ``--rounds`` timed rounds of ``--steps`` G steps between them. It prints the
median img/s of each (G-step batch x steps / seconds) and the ratio gantk / reference (> 1: gantk
is faster). Compilation happens in the warm-up and is not timed. The rows run variant by
variant, ``compile`` last; ``--budget`` (80 s) bounds the run: a combination not started by then
is reported as skipped, so the run ends in time on a slow device.

    python benchmarks/gpu_throughput.py --quick                        # one GPU, < 2 min
    python benchmarks/gpu_throughput.py --quick --device cpu --batch 2 --steps 1 --rounds 1 \\
        --warmup 1 --configs dcgan-32 --variants fp32,bf16              # the CI smoke test's size
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import backbone_parity as bp  # noqa: E402
from references import loop  # noqa: E402

from gantk import Pipeline  # noqa: E402

CONFIGS = {"dcgan-32": bp.ROWS["dcgan32"], "resnet-32": bp.ROWS["resnet32"],
           "stylegan2-32": bp.ROWS["stylegan2_32_blur"], "stylegan2-64": bp._sg2_row(64)}
VARIANTS = {"fp32": {}, "bf16": {"precision": "bf16"}, "channels_last": {"channels_last": True},
            "compile": {"compile": True}}


class Reference:
    """loop.train_gan's step, with its optimisers kept across calls (as gantk's trainer keeps its
    own), under the same precision, memory order and compilation as the gantk arm."""

    def __init__(self, row: dict[str, Any], info: Any, data: torch.Tensor, device: torch.device,
                 variant: dict[str, Any], batch: int) -> None:
        torch.manual_seed(0)
        G, D = row["ref"](info)
        fmt = torch.channels_last if variant.get("channels_last") else torch.contiguous_format
        self.G, self.D = G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)
        self.data = data.to(device).contiguous(memory_format=fmt)
        if variant.get("compile"):
            self.G.compile(), self.D.compile()
        self.bf16 = variant.get("precision") == "bf16"
        self.device, self.batch, self.latent = device, batch, row["latent"]
        self.loss = row.get("loss", "ns")
        self.r1_gamma, self.r1_every = row.get("r1", (0.0, 0))
        c = self.r1_every / (self.r1_every + 1) if self.r1_every else 1.0
        lr, betas = row["lr"], row["betas"]
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr * c,
                                      betas=(betas[0] ** c, betas[1] ** c))
        self.gen = torch.Generator().manual_seed(0)
        self.d_steps = 0

    def _real(self) -> torch.Tensor:
        return self.data[torch.randint(len(self.data), (self.batch,), generator=self.gen)]

    def run(self, steps: int) -> None:
        G, D, opt_g, opt_d = self.G, self.D, self.opt_g, self.opt_d
        auto = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)
        for _ in range(steps):
            z = torch.randn(self.batch, self.latent, device=self.device)
            with auto:
                with torch.no_grad():
                    fake = G(z)
                loss_d = loop.d_loss(self.loss, D(self._real()), D(fake))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            self.d_steps += 1
            if self.r1_every and self.d_steps % self.r1_every == 0:
                real = self._real().requires_grad_(True)
                with auto:
                    out = D(real).float().sum()
                (grad,) = torch.autograd.grad(out, real, create_graph=True)
                opt_d.zero_grad(set_to_none=True)
                (self.r1_gamma / 2 * grad.pow(2).flatten(1).sum(1).mean() * self.r1_every).backward()
                opt_d.step()
            for p in D.parameters():
                p.requires_grad_(False)
            z = torch.randn(self.batch, self.latent, device=self.device)
            with auto:
                loss_g = loop.g_loss(self.loss, D(G(z)))
            opt_g.zero_grad(set_to_none=True)
            loss_g.float().backward()
            opt_g.step()
            for p in D.parameters():
                p.requires_grad_(True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, steps: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn(steps)
    _sync(device)
    return time.perf_counter() - t0


def one(config: str, variant: str, args: Any, device: torch.device) -> dict[str, Any]:
    row = CONFIGS[config]
    batch = args.batch or row["batch"]
    spec = bp._spec({**row, "batch": batch}, 0, 10**9)
    spec["train"].update(device=str(device), **VARIANTS[variant])
    pipe = Pipeline.from_spec(spec)
    ref = Reference(row, pipe.data_info, pipe.real_data()[0], device, VARIANTS[variant], batch)
    arms = {"gantk": lambda k: pipe.train(steps=k, progress=False), "reference": ref.run}
    for fn in arms.values():
        _timed(fn, args.warmup, device)
    secs: dict[str, list[float]] = {arm: [] for arm in arms}
    for r in range(args.rounds):  # alternate, so a busy device hits both alike
        for arm in (list(arms) if r % 2 == 0 else list(arms)[::-1]):
            secs[arm].append(_timed(arms[arm], args.steps, device))
    rate = {arm: args.steps * batch / statistics.median(s) for arm, s in secs.items()}
    return {"config": config, "variant": variant, "batch": batch,
            "gantk_img_per_s": rate["gantk"], "reference_img_per_s": rate["reference"],
            "ratio": rate["gantk"] / rate["reference"]}


def applies(config: str, variant: str) -> bool:
    return not (variant == "compile" and CONFIGS[config].get("r1"))


def quick(args: Any) -> int:
    start = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no GPU is visible; use --device cpu for a smoke test")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    configs = args.configs.split(",") if args.configs else list(CONFIGS)
    variants = args.variants.split(",") if args.variants else list(VARIANTS)
    print(f"device: {name}; torch {torch.__version__}; {args.rounds} rounds x {args.steps} steps "
          f"after {args.warmup} warm-up steps; budget {args.budget:.0f} s", flush=True)
    print(f"{'config':13} {'variant':13} {'batch':>5} {'gantk img/s':>12} {'reference img/s':>16} "
          f"{'gantk/ref':>9}", flush=True)
    results = []
    # variant by variant, compile last: the cheap rows come first, and the budget stops the
    # costly ones (a compilation can take tens of seconds a network on a GPU)
    variants.sort(key=lambda v: v == "compile")
    for variant in variants:
        for config in configs:
            if not applies(config, variant):
                print(f"{config:13} {variant:13} {'n/a (R1 differentiates D twice)':>45}")
                continue
            if time.perf_counter() - start > args.budget:
                print(f"{config:13} {variant:13} {'skipped (budget spent)':>45}")
                results.append({"config": config, "variant": variant, "skipped": "budget"})
                continue
            try:
                r = one(config, variant, args, device)
            except Exception as exc:  # noqa: BLE001 - one failing combination must not end the run
                text = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
                print(f"{config:13} {variant:13} failed: {text}", flush=True)
                results.append({"config": config, "variant": variant, "error": text})
                continue
            results.append(r)
            print(f"{config:13} {variant:13} {r['batch']:5d} {r['gantk_img_per_s']:12.1f} "
                  f"{r['reference_img_per_s']:16.1f} {r['ratio']:9.3f}", flush=True)
    total = time.perf_counter() - start
    print(f"{total:.0f} s in all")
    if args.out:
        Path(args.out).write_text(json.dumps({"device": name, "torch": torch.__version__,
                                              "seconds": total, "results": results}, indent=2))
    return 0


def add_arguments(p: Any) -> None:
    p.add_argument("--variants", default=None,
                   help="--quick: comma-separated of " + ",".join(VARIANTS) + " (default: all)")
    p.add_argument("--rounds", type=int, default=3, help="--quick: timed rounds per arm")
    p.add_argument("--budget", type=float, default=80.0,
                   help="--quick: seconds after which no new combination starts")

