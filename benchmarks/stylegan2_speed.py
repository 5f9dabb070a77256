"""StyleGAN2's speed against the reference arithmetic (issue 31), on the CPU.

``step_time`` times one training step (a D step and a G step, non-saturating loss, Adam, no
regulariser, the same hand loop for both) of gantk's stylegan2 nets and of the reference nets
(benchmarks/references/stylegan2_ref.py) at equal configuration (constant width, latent = style =
width, 2 mapping layers, no style mixing) at each size, in process CPU time, rounds alternating
between the sides, and prints the per-size medians side by side with the median of the per-round
ratios gantk / reference. gantk is timed with the modulated conv in both of its forms
(``fused_modconv = "never"``: conv(x * s, w) * d; ``"always"``: the grouped conv with per-sample
weights), and so is the reference (``plain``: NVlabs' form in training; ``fused``: rosinality's
default). ``sample_time`` times eval-mode sampling with gantk's two forms.

    python benchmarks/stylegan2_speed.py [--sizes 16 32 64] [--channels 128] [--batch 16]
    python benchmarks/stylegan2_speed.py --sample-time [--sizes 16 32]
    (or backbone_parity.py --step-time / --sample-time with the same options)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from references import loop, stylegan2_ref  # noqa: E402

from gantk import Pipeline  # noqa: E402


def _timed_step(G, D, *, batch: int, latent: int, data: torch.Tensor, lr: float = 2e-3):
    """A closure running ``n`` D+G steps of the references' loop shape; keeps its optimisers."""
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.0, 0.99))
    gen = torch.Generator().manual_seed(0)
    G.train(), D.train()

    def run(n: int) -> None:
        for _ in range(n):
            real = data[torch.randint(len(data), (batch,), generator=gen)]
            with torch.no_grad():
                fake = G(torch.randn(batch, latent))
            opt_d.zero_grad(set_to_none=True)
            loop.d_loss("ns", D(real), D(fake)).backward()
            opt_d.step()
            D.requires_grad_(False)
            opt_g.zero_grad(set_to_none=True)
            loop.g_loss("ns", D(G(torch.randn(batch, latent)))).backward()
            opt_g.step()
            D.requires_grad_(True)
    return run


def step_time(sizes: list[int], *, channels: int, batch: int, rounds: int, steps: int) -> list[dict]:
    """gantk's stylegan2 (both modulated-conv forms) against the reference, per size."""
    out = []
    for size in sizes:
        sides: dict[str, Any] = {}
        for form in ("never", "always"):
            torch.manual_seed(0)
            bb = {"name": "stylegan2", "latent_dim": channels, "style_dim": channels, "n_mlp": 2,
                  "channel_base": channels * size, "channel_max": channels, "mixing_prob": 0.0,
                  "fused_modconv": form}
            try:
                pipe = Pipeline.from_spec({"backbone": bb, "data": {"name": "digits", "resolution": size}})
            except Exception as exc:  # an older gantk without the option: one gantk column
                if form == "never":
                    bb.pop("fused_modconv")
                    pipe = Pipeline.from_spec({"backbone": bb, "data": {"name": "digits",
                                                                        "resolution": size}})
                else:
                    print(f"  (gantk fused_modconv={form} skipped: {str(exc).splitlines()[0][:80]})")
                    continue
            data = pipe.real_data()[0]
            sides[f"gantk {form}"] = _timed_step(pipe.backbone.generator, pipe.backbone.discriminator,
                                                  batch=batch, latent=channels, data=data)
        for fused in (False, True):
            torch.manual_seed(0)
            sides[f"ref {'fused' if fused else 'plain'}"] = _timed_step(
                stylegan2_ref.Generator(size, 1, channels, channels, fused=fused),
                stylegan2_ref.Discriminator(size, 1, channels), batch=batch, latent=channels, data=data)
        for run in sides.values():
            run(1)  # warm-up: allocator, Adam state
        times: dict[str, list[float]] = {k: [] for k in sides}
        for r in range(rounds):
            names = list(sides) if r % 2 == 0 else list(sides)[::-1]
            for name in names:
                t0 = time.process_time()
                sides[name](steps)
                times[name].append((time.process_time() - t0) / steps)
        row = {"size": size, "channels": channels, "batch": batch, "rounds": rounds, "steps": steps,
               "seconds": {k: statistics.median(v) for k, v in times.items()},
               "ratio": {f"{g} / {r}": statistics.median(a / b for a, b in zip(times[g], times[r]))
                         for g in times if g.startswith("gantk") for r in times if r.startswith("ref")}}
        out.append(row)
        cells = "  ".join(f"{k} {1000 * v:.0f} ms" for k, v in row["seconds"].items())
        ratios = "  ".join(f"{k} {v:.2f}" for k, v in row["ratio"].items())
        print(f"{size:3d} px, {channels} ch, batch {batch}: {cells}  |  {ratios}", flush=True)
    return out


def sample_time(sizes: list[int], *, channels: int, batches: tuple[int, ...] = (1, 16),
                rounds: int = 3, calls: int = 3) -> None:
    """Eval-mode sampling with the two modulated-conv forms (``--sample-time``): process CPU time
    per call, the best of ``rounds`` alternating rounds."""
    for size in sizes:
        pipe = Pipeline.from_spec({"backbone": {"name": "stylegan2", "latent_dim": channels,
                                                "style_dim": channels, "n_mlp": 2,
                                                "channel_base": channels * size, "channel_max": channels},
                                   "data": {"name": "digits", "resolution": size}})
        G = pipe.backbone.generator.eval()
        for b in batches:
            z, best = torch.randn(b, channels), {}
            with torch.no_grad():
                for _ in range(rounds):
                    for form in ("never", "always"):
                        G.fused_modconv = form
                        G(z)
                        t0 = time.process_time()
                        for _ in range(calls):
                            G(z)
                        t = (time.process_time() - t0) / calls
                        best[form] = min(best.get(form, t), t)
            plain, fused = best["never"], best["always"]
            print(f"{size:3d} px, {channels} ch, sampling batch {b}: plain {1000 * plain:.1f} ms, "
                  f"fused {1000 * fused:.1f} ms (fused / plain {fused / plain:.2f})", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[16, 32, 64])
    ap.add_argument("--channels", type=int, default=128, help="width of every layer")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    ap.add_argument("--round-steps", type=int, default=2, help="steps per round")
    ap.add_argument("--sample-time", action="store_true", help="time sampling instead")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.sample_time:
        sample_time(args.sizes, channels=args.channels)
        return 0
    print("process CPU time per step, median over rounds; ratios: median of per-round ratios")
    step_time(args.sizes, channels=args.channels, batch=args.batch, rounds=args.rounds,
              steps=args.round_steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
