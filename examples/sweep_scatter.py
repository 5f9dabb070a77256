"""Side-by-side pictures of a finished sweep on 2-D data (ring, grid) that show why each panel
scores what it scores: one column per cell, the same seed's run and the same latent draw.

Top row: the generated points over the real modes; each mode is drawn green when this panel's
points cover it (at least one point inside its acceptance radius, ``threshold`` x the mode std) and
red when not, with its acceptance circle. The title gives this panel's modes covered and
high-quality share (the `modes` metric on these points, docs/metrics.md). Bottom row: every
point's distance to its nearest mode, on a log scale, with the acceptance radius as a line: the
points left of it are the "high-quality" share. `make demo` calls it after `gantk sweep
examples/sweeps/demo.toml`.

    .venv/bin/python examples/sweep_scatter.py runs/demo [--seed 0] [--n 2000] [--out FILE]

Writes SWEEP_DIR/side_by_side.png by default and prints its path.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from gantk.errors import GantkError
from gantk.metrics.modes import assign_modes, mode_metrics
from gantk.sweeps import load_run, slug

THRESHOLD = 3.0  # the modes metric's default: within 3 std of a centre is high quality


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0, help="which seed's runs to draw")
    ap.add_argument("--n", type=int, default=2000, help="points per panel")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    summary_file = args.sweep_dir / "summary.json"
    if not summary_file.is_file():
        print(f"{summary_file}: no summary here; run `gantk sweep SWEEP.toml --out "
              f"{args.sweep_dir}` first.", file=sys.stderr)
        return 2
    cells = [c["cell"] for c in json.loads(summary_file.read_text())["cells"]]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    fig, axes = plt.subplots(2, len(cells), figsize=(4.6 * len(cells), 8.2), dpi=110,
                             squeeze=False, gridspec_kw={"height_ratios": [3, 1.3]})
    for col, cell in enumerate(cells):
        run = args.sweep_dir / slug(cell) / f"seed_{args.seed}"
        try:
            pipe, with_ = load_run(run)  # a train_as cell: its source's nets + its transforms
        except GantkError as exc:
            print(exc.paragraph(), file=sys.stderr)
            return 2
        info = pipe.data_info
        if info.modes is None:
            print(f"{run}: the data set has no 2-D modes to draw; this figure is for ring/grid "
                  "sweeps (use `gantk sample RUN --out grid.png` for images).", file=sys.stderr)
            return 2
        torch.manual_seed(args.seed)
        x = pipe.sample(args.n, with_=with_).float().numpy()
        m = info.modes.cpu().numpy()
        std = float(info.mode_std)
        radius = THRESHOLD * std
        ids = assign_modes(x, m, std, threshold=THRESHOLD)
        scores = mode_metrics(x, m, std, threshold=THRESHOLD)
        hit = np.bincount(ids[ids >= 0], minlength=len(m)) > 0

        ax = axes[0, col]
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.35, c="#1f77b4", rasterized=True, zorder=1,
                   label="generated")
        for (cx, cy), covered in zip(m, hit):
            colour = "#2ca02c" if covered else "#d62728"
            ax.add_patch(Circle((cx, cy), radius, fill=False, color=colour, lw=1.2, zorder=3))
            ax.scatter([cx], [cy], s=90, facecolors="none", edgecolors=colour, lw=1.5, zorder=3)
        lo, hi = info.value_range
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_title(f"{cell}, seed {args.seed}\nmodes covered {int(scores['modes_covered'])} of "
                     f"{len(m)}, high quality {100 * scores['high_quality']:.1f}%", fontsize=9)

        d = np.sqrt(((x[:, None, :] - m[None, :, :]) ** 2).sum(-1)).min(1)
        ax = axes[1, col]
        bins = np.logspace(np.log10(max(d.min(), radius / 100)), np.log10(max(d.max(), radius * 10)),
                           50)
        ax.hist(np.maximum(d, bins[0]), bins=bins, color="#1f77b4", alpha=0.8)
        ax.axvline(radius, color="#2ca02c", lw=1.5)
        ax.set_xscale("log")
        ax.set_xlabel("distance to the nearest mode", fontsize=8)
        ax.set_ylabel("points", fontsize=8)
        ax.text(radius, ax.get_ylim()[1] * 0.9, f" acceptance radius\n {THRESHOLD:g} std = {radius:g}",
                fontsize=7, color="#2ca02c", va="top")
    import textwrap

    fig.suptitle(textwrap.fill(
        f"{args.n} points per panel, the same latents. Rings mark the modes: green when a point "
        f"lies within the mode's acceptance radius ({THRESHOLD:g} std = {radius:g}, too small to "
        "see at this scale), red when none does. Below: the points left of the green line are "
        "the high-quality share.", width=int(fig.get_figwidth() * 13)), fontsize=9)
    fig.tight_layout()
    out = args.out or args.sweep_dir / "side_by_side.png"
    fig.savefig(out)
    plt.close(fig)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
