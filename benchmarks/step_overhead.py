"""Time of one training step through gantk against a hand-written PyTorch loop.

Both run the same networks (gantk's `dcgan` backbone, built once and deep-copied), the same Adam
settings, the same batch and the same non-saturating loss; the hand-written loop is what a careful
engineer would write (separate real/fake D passes, D frozen during the G step, no logging calls),
so the ratio measures gantk's own overhead: step context, lazy caching, term dictionaries, the
finiteness check, the paired latent draws, the logged values, and ``Pipeline.train``'s per-call
work (each round is one ``train(steps=...)`` call). Both keep their optimisers across rounds.
Rounds alternate between the two so that machine noise hits both alike; the figure reported is
the median of the per-round ratios (robust on a shared machine), with its quartiles and the ratio
of medians. Rounds are timed in process CPU time by default (``--clock cpu``; with one torch
thread, the time this process ran, so that time spent waiting for a core on a loaded machine
counts for neither arm); ``--clock wall`` times them with ``time.perf_counter``.

    python benchmarks/step_overhead.py [--resolution 32] [--width 32] [--batch 64] [--rounds 7]
    python benchmarks/step_overhead.py --ring [--batch 256] [--steps 50]   # the mlp on the ring
    python benchmarks/step_overhead.py --ring --pieces   # each per-step piece of gantk's, alone
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch
import torch.nn.functional as F

from gantk import Pipeline


class HandWritten:
    """The baseline: optimisers built once and kept across rounds, as gantk's trainer keeps its
    own (rebuilding them every round would add their construction and Adam's fresh-state first
    step to every round of the baseline only)."""

    def __init__(self, backbone, data, *, batch: int, lr: float, betas) -> None:
        self.backbone, self.data, self.batch = backbone, data, batch
        self.opt_g = torch.optim.Adam(backbone.generator.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(backbone.discriminator.parameters(), lr=lr, betas=betas)
        self.gen = torch.Generator().manual_seed(0)

    def run(self, steps: int) -> None:
        G, D = self.backbone.generator, self.backbone.discriminator
        opt_g, opt_d, batch, data = self.opt_g, self.opt_d, self.batch, self.data
        for _ in range(steps):
            idx = torch.randint(len(data), (batch,), generator=self.gen)
            real = data[idx]
            z = torch.randn(batch, self.backbone.latent_dim)
            with torch.no_grad():
                fake = G(z)
            d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            for p in D.parameters():
                p.requires_grad_(False)
            z = torch.randn(batch, self.backbone.latent_dim)
            g_loss = F.softplus(-D(G(z))).mean()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            for p in D.parameters():
                p.requires_grad_(True)


def pieces(pipe, data, batch: int) -> None:
    """Each piece of gantk's step that the hand loop does not have, timed alone (best of 5 x
    20,000 calls; inside a step a piece costs more, as the step's kernels evict the caches)."""
    import timeit

    from gantk.store.checkpoint import check_finite

    tr, bb, world = pipe.trainer, pipe.backbone, pipe.world
    real, real_y = next(pipe.stream)
    loss = torch.tensor(1.0, requires_grad=True) * 2
    values = {"loss/d": loss}
    logs = {k: loss.detach() for k in ("loss/d", "d/real", "d/fake", "loss/g")}
    window = dict(logs)
    gen = torch.Generator().manual_seed(0)

    def around():
        with tr.precision.around_step:
            pass

    def check():  # what Trainer._update reads: the terms' sum, one scalar
        first, *rest = values.values()
        return float(sum(rest, first).item())

    def window_sums():
        for k, v in logs.items():
            window[k] = window[k] + v

    rows = [
        ("step context (Precision.around_step)", around, 1, 20000),
        ("finiteness check: the sum's scalar", check, 2, 20000),
        ("paired latent draw (World.draw_paired)",
         lambda: world.draw_paired(lambda m: bb.sample_latent(m, device=pipe.device), batch,
                                   step=5, stream=0), 2, 20000),
        (f"  the bare torch.randn({batch}, {bb.latent_dim})",
         lambda: torch.randn(batch, bb.latent_dim), 2, 20000),
        ("Trainer.context incl. its draw", lambda: tr.context("g", 5, real, real_y, stream=1),
         2, 5000),
        ("BatchStream next", lambda: next(pipe.stream), 1, 20000),
        ("  the hand loop's randint + index",
         lambda: data[torch.randint(len(data), (batch,), generator=gen)], 1, 20000),
        (f"loop: log window sums ({len(logs)} keys)", window_sums, 1, 20000),
        ("loop: gantk_on_step_end hook",
         lambda: pipe.manager.hook.gantk_on_step_end(pipeline=pipe, step=1, logs={}), 1, 20000),
        ("Pipeline.train(steps=0), per call", lambda: pipe.train(steps=0, progress=False), 1, 300),
        ("  check_finite(weights), per call", lambda: check_finite(pipe.modules()), 1, 300),
    ]
    for name, fn, per_step, n in rows:
        fn()
        us = min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6
        print(f"{name:42s} {us:8.2f} us x {per_step}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--ring", action="store_true",
                    help="the mlp backbone on the 8-Gaussian ring instead of dcgan on digits")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="process CPU time (default) or wall time")
    ap.add_argument("--pieces", action="store_true",
                    help="time each per-step piece of gantk's step alone instead")
    args = ap.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)

    train = {"batch_size": args.batch, "lr_g": 2e-4, "lr_d": 2e-4, "betas": [0.5, 0.999],
             "device": "cpu"}
    if args.ring:
        spec = {"stack": "backbone=mlp + loss=ns + data=ring", "seed": 0, "train": train}
    else:
        spec = {"stack": "backbone=dcgan + loss=ns + data=digits", "seed": 0,
                "backbone": {"width": args.width}, "data": {"resolution": args.resolution},
                "train": train}
    pipe = Pipeline.from_spec(spec)
    data = pipe.real_data()[0]
    hand = HandWritten(copy.deepcopy(pipe.backbone), data, batch=args.batch, lr=2e-4,
                       betas=(0.5, 0.999))  # same initial weights, independent copy
    pipe.train(steps=2, progress=False)  # warm-up both paths (optimisers exist from here on)
    hand.run(2)
    if args.pieces:
        pieces(pipe, data, args.batch)
        return

    load = os.getloadavg()[0]
    t_gantk, t_hand = [], []
    for _ in range(args.rounds):
        t0 = clock()
        pipe.train(steps=args.steps, progress=False)
        t_gantk.append((clock() - t0) / args.steps)
        t0 = clock()
        hand.run(args.steps)
        t_hand.append((clock() - t0) / args.steps)

    g, h = statistics.median(t_gantk), statistics.median(t_hand)
    # each round times both loops back to back, so the per-round ratio cancels slow drifts of a
    # shared machine's load; its median and quartiles are the robust figure
    ratios = sorted(a / b for a, b in zip(t_gantk, t_hand, strict=True))
    q1, q2, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    what = "mlp on the ring" if args.ring else f"dcgan {args.resolution}px width {args.width}"
    print(f"{what} batch {args.batch}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} rounds x "
          f"{args.steps} steps, {args.clock} time, load average {load:.1f} at the start and "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"gantk step:        {g * 1000:8.2f} ms (median; min {min(t_gantk) * 1000:.2f})")
    print(f"hand-written step: {h * 1000:8.2f} ms (median; min {min(t_hand) * 1000:.2f})")
    print(f"ratio gantk / hand-written: median of per-round ratios {statistics.median(ratios):.3f} "
          f"(quartiles {q1:.3f} .. {q3:.3f}); ratio of medians {g / h:.3f}  (goal <= 1.03)")


if __name__ == "__main__":
    main()
