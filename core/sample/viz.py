"""Pictures of samples: image grids (torchvision) and, for 2-D data, scatter plots over the modes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..base.interfaces import DataInfo
from ..base.safeio import atomic_path


def save_grid(x: Tensor, path: str | Path, *, nrow: int | None = None, padding: int = 1,
              min_side: int = 0) -> Path:
    """Images in [-1, 1] (N, C, H, W) -> one PNG grid.

    ``min_side``: enlarge each image by an integer factor (nearest neighbour, so every generated
    pixel stays a visible square) until its shorter side is at least this many pixels; a 16 px
    sample saved alone is otherwise too small to look at.
    """
    from torchvision.utils import save_image

    path = Path(path)
    x = x.detach().float().cpu()
    factor = max(1, math.ceil(min_side / min(x.shape[-2:]))) if min_side else 1
    if factor > 1:
        x = torch.nn.functional.interpolate(x, scale_factor=factor, mode="nearest")
    nrow = nrow or max(1, int(math.ceil(math.sqrt(len(x)))))
    with atomic_path(path) as tmp:
        save_image((x.clamp(-1, 1) + 1) / 2, str(tmp), nrow=nrow, padding=padding, format="png")
    return path


def save_scatter(points: Tensor, path: str | Path, *, info: DataInfo | None = None,
                 real: Tensor | None = None, title: str = "") -> Path:
    """2-D samples as a scatter plot, with the real modes (and a real sample) underneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    pts = points.detach().float().cpu().reshape(len(points), -1)[:, :2]
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    # generated points first, then the mode centres as hollow rings and the real points on top:
    # the real mixtures are far narrower than a marker, so anything drawn over them hides them
    ax.scatter(pts[:, 0], pts[:, 1], s=3, c="#1f77b4", alpha=0.5, label="generated", rasterized=True,
               zorder=1)
    if info is not None and info.modes is not None:
        m = info.modes.cpu()
        ax.scatter(m[:, 0], m[:, 1], s=90, marker="o", facecolors="none", edgecolors="#d62728",
                   linewidths=1.0, label="mode centre", zorder=2)
    if real is not None:
        r = real.detach().float().cpu()[:, :2]
        ax.scatter(r[:, 0], r[:, 1], s=4, c="#2ca02c", label="real sample", rasterized=True, zorder=3)
    if info is not None:
        lo, hi = info.value_range
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path


def save_samples(x: Tensor, path: str | Path, *, info: DataInfo, real: Tensor | None = None,
                 title: str = "") -> Path:
    if info.kind == "points":
        return save_scatter(x, path, info=info, real=real, title=title)
    return save_grid(x, path)


def save_tensor_file(x: Tensor, path: str | Path, *, y: Tensor | None = None,
                     z: Tensor | None = None) -> Path:
    """``.npz`` (numpy arrays x, y, z) or ``.pt`` (a dict of tensors, torch.save)."""
    path = Path(path)
    payload = {"x": x.detach().cpu()}
    if y is not None:
        payload["y"] = y.detach().cpu()
    if z is not None:
        payload["z"] = z.detach().cpu()
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        if path.suffix == ".npz":
            import numpy as np

            np.savez_compressed(fh, **{k: v.numpy() for k, v in payload.items()})
        else:
            torch.save(payload, fh)
    return path


def save_figure(fig: Any, path: Path, title: str) -> Path:
    """Title a matplotlib figure (wrapped to its width, never cut off), write it as a PNG through
    an atomic temporary file, and close it."""
    import textwrap

    import matplotlib.pyplot as plt

    # about 13 characters of 10 pt per inch of figure width
    fig.suptitle(textwrap.fill(title, width=max(40, int(fig.get_figwidth() * 13))), fontsize=10)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path
