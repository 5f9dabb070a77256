"""Side-by-side scatter plots of a finished sweep on 2-D data (ring, grid): one panel per cell, the
same seed's run, the same latent draw, with the real modes underneath. `make demo` calls it after
`gantk sweep examples/sweeps/demo.toml`.

    .venv/bin/python examples/sweep_scatter.py runs/demo [--seed 0] [--n 2000] [--out FILE]

Writes SWEEP_DIR/side_by_side.png by default and prints its path.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from gantk.errors import GantkError
from gantk.sweeps import load_run, slug


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

    fig, axes = plt.subplots(1, len(cells), figsize=(4.2 * len(cells), 4.4), dpi=110,
                             squeeze=False)
    for ax, cell in zip(axes[0], cells):
        run = args.sweep_dir / slug(cell) / f"seed_{args.seed}"
        try:
            pipe, with_ = load_run(run)  # a train_as cell: its source's nets + its transforms
        except GantkError as exc:
            print(exc.paragraph(), file=sys.stderr)
            return 2
        if pipe.data_info.modes is None:
            print(f"{run}: the data set has no 2-D modes to draw; this figure is for ring/grid "
                  "sweeps (use `gantk sample RUN --out grid.png` for images).", file=sys.stderr)
            return 2
        torch.manual_seed(args.seed)
        x = pipe.sample(args.n, with_=with_).float()
        m = pipe.data_info.modes.cpu()
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5, c="#1f77b4", rasterized=True)
        ax.scatter(m[:, 0], m[:, 1], s=50, marker="x", c="#d62728")
        lo, hi = pipe.data_info.value_range
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_title(f"{cell} (seed {args.seed})", fontsize=9)
    fig.tight_layout()
    out = args.out or args.sweep_dir / "side_by_side.png"
    fig.savefig(out)
    plt.close(fig)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
