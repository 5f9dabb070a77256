"""The sampling options of ``gantk sample`` and ``gantk interpolate`` (see docs/cli.md).

    gantk sample RUN --n 64 --out grid.png [--truncation 0.7] [--class 3]
                     [--noise-mode const|random|none]
    gantk sample RUN --seeds 0-63 --outdir DIR [--out grid.png]     one PNG per seed
    gantk interpolate RUN --seeds 1,2,3 --steps 8 --out walk.png|walk.gif|walk.mp4
                     [--mode lerp|slerp] [--space auto|z|w] [--truncation 0.7] [--noise-mode ...]

The conventions (what truncation means on each backbone, why a seed's image never depends on the
rest of the list) are in :mod:`gantk.sampling`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover - torch loads on first use (keeps `gantk --help` fast)
    from torch import Tensor

VIDEO_SUFFIXES = (".gif", ".mp4")


NOISE_HELP = ("StyleGAN2's noise inputs: const (fixed maps stored with the model, the default as in "
              "StyleGAN2-ADA's gen_images.py), random, or none")


def add_sample_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--truncation", type=float, metavar="PSI",
                   help="truncation: a lerp towards the average latent, 1 off, 0 the average "
                        "image (StyleGAN2: w_avg in W; other backbones: psi * z)")
    p.add_argument("--noise-mode", choices=["const", "random", "none"], help=NOISE_HELP)
    p.add_argument("--seeds", metavar="LIST", help="one image per seed, e.g. 0-63 or 1,5,9 (the "
                   "same image for a seed in every list and run)")
    p.add_argument("--outdir", metavar="DIR", help="with --seeds: write DIR/seed0000.png, ...")
    p.add_argument("--min-side", type=int, default=0, metavar="PX",
                   help="with --outdir: enlarge each image by a whole factor (nearest neighbour, "
                        "every pixel a square) until its shorter side is at least PX, e.g. 256")
    p.add_argument("--class", dest="cls", type=int, metavar="K",
                   help="class-conditional runs: sample class K")


def add_interpolate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", metavar="LIST", help="interpolate between these seeds' latents, e.g. "
                   "1,2,3 (any generator; without --seeds: real images through an encoder)")
    p.add_argument("--mode", choices=["lerp", "slerp"], default="lerp", help="with --seeds")
    p.add_argument("--space", choices=["auto", "z", "w"], default="auto",
                   help="with --seeds: z, or w (StyleGAN2's W; auto picks it where it exists)")
    p.add_argument("--truncation", type=float, metavar="PSI", help="with --seeds, as in gantk sample")
    p.add_argument("--noise-mode", choices=["const", "random", "none"], help=NOISE_HELP)
    p.add_argument("--class", dest="cls", type=int, metavar="K", help="with --seeds: class K")
    p.add_argument("--fps", type=float, default=12.0, help="frames per second of a .gif or .mp4")


def sample_command(args: argparse.Namespace, pipe: Any, with_: list[dict[str, Any]],
                   console: Any) -> int:
    """``gantk sample`` once the run is loaded: a grid/file of ``--n`` samples, or one PNG per
    seed (``--seeds --outdir``), with ``--truncation`` and ``--class``."""
    import torch

    from ..sample.sampling import class_labels, parse_seeds
    from ..sample.viz import save_grid, save_tensor_file

    out = Path(args.out) if args.out else None
    if out is None and not args.outdir:
        raise SpecError("nothing to write", where="gantk sample",
                        fix="give --out grid.png (or .npz/.pt), or --seeds LIST --outdir DIR.")
    if out is not None and out.suffix not in (".png", ".npz", ".pt"):
        raise SpecError(f"unknown output type {out.suffix!r}", where="--out",
                        fix="end the file name in .png (grid or scatter), .npz or .pt.")
    if args.outdir and not args.seeds:
        raise SpecError("--outdir writes one PNG per seed and needs --seeds", where="--outdir",
                        fix="add --seeds, e.g. --seeds 0-63.")
    seeds = parse_seeds(args.seeds) if args.seeds else None
    if seeds is not None and args.outdir and pipe.data_info.kind != "image":
        raise SpecError("one PNG per seed needs image data", where="--outdir",
                        fix="write all seeds into one scatter plot with --out seeds.png.")
    n = len(seeds) if seeds is not None else args.n
    y = class_labels(pipe.backbone, args.cls, n, "cpu")
    if seeds is None:
        torch.manual_seed(args.seed)
    x, z, y = pipe.sample(n, with_=with_, y=y, return_latents=True, truncation=args.truncation,
                          seeds=seeds, noise_mode=args.noise_mode)
    notes = [f"with {', '.join(w['name'] for w in with_)}"] if with_ else []
    if args.truncation is not None:
        notes.append(f"truncation {args.truncation:g}")
    if args.cls is not None:
        notes.append(f"class {args.cls}")
    if args.noise_mode is not None:
        notes.append(f"noise {args.noise_mode}")
    if args.outdir:
        folder = Path(args.outdir)
        for seed, image in zip(seeds, x):
            save_grid(image.unsqueeze(0), folder / f"seed{seed:04d}.png", nrow=1, padding=0,
                      min_side=min(max(args.min_side, 0), 4096))
        console.print(f"wrote {n} images (step {pipe.step}) to {folder}/seedNNNN.png", markup=False)
    if out is not None:
        if out.suffix == ".png":
            pipe.save_picture(x, out, title=" ".join([f"{pipe.spec.shorthand} step {pipe.step}",
                                                     *notes]))
        else:
            save_tensor_file(x, out, y=y, z=z)
        console.print(f"wrote {n} samples (step {pipe.step}) to {out}", markup=False)
    return 0


def _to_uint8(frames: Tensor, min_side: int = 128) -> list[Any]:
    """[-1, 1] (F, C, H, W) -> HxWx3 uint8 arrays, enlarged by an integer factor (nearest) so the
    short side is at least ``min_side`` (GIF viewers show 16 px frames as specks)."""
    import numpy as np
    import torch

    x = ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    factor = max(1, -(-min_side // min(x.shape[2:])))
    x = x.repeat_interleave(factor, 2).repeat_interleave(factor, 3)
    return [np.ascontiguousarray(f.permute(1, 2, 0).numpy()) for f in x]


def save_animation(frames: Tensor, path: Path, *, fps: float) -> Path:
    """Frames as an animated GIF (imageio's Pillow writer) or an MP4 (imageio-ffmpeg)."""
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    images = _to_uint8(frames)
    if path.suffix == ".gif":
        iio.imwrite(path, images, extension=".gif", duration=1000 / fps, loop=0)
        return path
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise SpecError("writing .mp4 needs the imageio-ffmpeg package, which is not installed",
                        where=str(path), fix="pip install imageio-ffmpeg, or write a .gif.") from None
    iio.imwrite(path, images, extension=".mp4", fps=fps, codec="libx264",
                macro_block_size=1)
    return path


def interpolate_command(args: argparse.Namespace, pipe: Any, console: Any) -> int:
    """``gantk interpolate --seeds``: a grid (one row per pair of neighbouring seeds, both ends
    included) or an animation through every seed."""
    import torch

    from ..sample.sampling import parse_seeds
    from ..sample.viz import save_grid

    if pipe.data_info.kind != "image":
        raise SpecError("interpolation pictures need image data", where=str(args.run),
                        fix="use `gantk sample` for points data.")
    out = Path(args.out)
    if out.suffix not in (".png", *VIDEO_SUFFIXES):
        raise SpecError(f"unknown output type {out.suffix!r}", where="--out",
                        fix="end the file name in .png (grid), .gif or .mp4 (animation).")
    seeds = parse_seeds(args.seeds)
    frames = pipe.interpolate(seeds, args.steps, mode=args.mode, space=args.space,
                              truncation=args.truncation, cls=args.cls, noise_mode=args.noise_mode)
    if out.suffix == ".png":
        rows = [frames[i * args.steps:(i + 1) * args.steps + 1] for i in range(len(seeds) - 1)]
        save_grid(torch.cat(rows), out, nrow=args.steps + 1)
    else:
        save_animation(frames, out, fps=args.fps)
    space = args.space if args.space != "auto" else ("w" if pipe.backbone.has_w_space else "z")
    console.print(f"wrote {len(frames)} frames ({args.mode} in {space}, seeds {args.seeds}, step "
                  f"{pipe.step}) to {out}", markup=False)
    return 0
