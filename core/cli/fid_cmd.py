"""``gantk fid A B`` and ``gantk fid-stats SRC OUT.npz`` (see docs/metrics.md).

    gantk fid A B [--n 10000] [--n-real N] [--features inception] [--json]
    gantk fid-stats SRC OUT.npz [--n-real N] [--features inception]

Each of A, B (and SRC) is a folder of images or an image archive, a gantk run directory (``--n``
samples from its newest checkpoint), a registered data set name (``mnist5k``, ``digits``...), or a
``.npz`` of ``mu``/``sigma`` (not for SRC). Images are scored with the FID Inception-v3 (fetched
and verified on first use) unless ``--features`` names one of the shipped nets.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..base.errors import SpecError

DEFAULT_N = 10_000


def _shared(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=None,
                   help=f"samples generated from a run (default {DEFAULT_N:,}); with no run, a cap "
                        "on the images of each side")
    p.add_argument("--n-real", type=int, default=None,
                   help="images used from a folder, archive or data set: a seeded random subset "
                        "(default: all of them)")
    p.add_argument("--features", default=None,
                   choices=["inception", "digits", "mnist", "raw"],
                   help="feature net (default: inception for images, raw for 2-D points)")
    p.add_argument("--inception", metavar="PATH",
                   help="the Inception weights file or its folder (default: torch.hub's "
                        "checkpoint folder, downloaded and verified on first use)")
    p.add_argument("--resolution", type=int, default=None,
                   help="side images of a folder/archive are decoded at (default: the first "
                        "image's shorter side); for a data set, its resolution option")
    p.add_argument("--data-set", action="append", metavar="KEY=VALUE",
                   help="an option of a data set given by name, e.g. --data-set split=test")
    p.add_argument("--batch-size", type=int, default=100, help="images per feature batch")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples and of the subsets")
    p.add_argument("--step", type=int, help="a run's checkpoint of this step")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute the features of folders and data sets instead of caching them")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_commands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "fid", parents=[common], help="FID between two image sets, runs or statistics",
        description="Frechet distance between two sources, each a folder of images or an image "
                    "archive, a run directory, a data set name, or a .npz of mu/sigma.")
    p.add_argument("a", help="FOLDER, ARCHIVE, RUN_DIR, DATA_SET or STATS.npz")
    p.add_argument("b", help="FOLDER, ARCHIVE, RUN_DIR, DATA_SET or STATS.npz")
    _shared(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_fid)

    p = subparsers.add_parser(
        "fid-stats", parents=[common], help="save FID reference statistics (mu, sigma) to .npz",
        description="Write the mean and covariance of a source's features to OUT.npz, for "
                    "`gantk fid RUN OUT.npz` (readable by pytorch-fid and clean-fid too).")
    p.add_argument("src", help="FOLDER, ARCHIVE, RUN_DIR or DATA_SET")
    p.add_argument("out", help="OUT.npz")
    p.add_argument("--force", action="store_true", help="replace OUT.npz if it exists")
    _shared(p)
    p.set_defaults(func=cmd_fid_stats)


# ---------------------------------------------------------------------------- sources


def _check(args: argparse.Namespace) -> None:
    from .common import check_count

    for flag in ("n", "n_real"):
        value = getattr(args, flag)
        if value is not None:
            check_count(value, "--" + flag.replace("_", "-"), 10_000_000)
    check_count(args.batch_size, "--batch-size", 65_536)
    if args.resolution is not None:
        check_count(args.resolution, "--resolution", 1024)


def _open(text: str, args: argparse.Namespace, manager: Any, channels: int = 3) -> Any:
    from ..metrics.fid_inputs import Source, looks_like_run, open_source
    from .common import parse_named_options

    path = Path(text).expanduser()
    if path.exists() and looks_like_run(path):
        from ..facade.pipeline import Pipeline

        pipe = Pipeline.load(path, device=_device(args), step=args.step, manager=manager)
        return Source(str(path), "run", info=pipe.data_info,
                      data_name=pipe.spec.data.name, pipeline=pipe)
    options = parse_named_options([f"data.{o}" for o in args.data_set or []], flag="--data-set",
                                  example="split=test").get("data", {})
    return open_source(text, manager.registry, resolution=args.resolution, options=options,
                       channels=channels)


def _open_pair(args: argparse.Namespace, manager: Any) -> tuple[Any, Any]:
    """Both sides. Image files are read as RGB, except against a greyscale run or data set in a
    shipped classifier's space (``--features digits|mnist``), where they are read as greyscale
    like the other side (the classifiers score one channel, or three as Stacked MNIST). The
    other sides are opened first, so each image path is decoded once, with its channels."""

    from ..metrics.fid_inputs import looks_like_run

    def image_path(text: str) -> bool:  # what _open reads as a folder or archive of images
        path = Path(text).expanduser()
        return path.exists() and path.suffix.lower() != ".npz" and not looks_like_run(path)

    texts = (args.a, args.b)
    opened = {t: _open(t, args, manager) for t in texts if not image_path(t)}
    grey = args.features in ("digits", "mnist") and any(
        s.kind != "stats" and int(s.info.shape[0]) == 1 for s in opened.values())
    a, b = (opened[t] if t in opened else _open(t, args, manager, channels=1 if grey else 3)
            for t in texts)
    return a, b


def _device(args: argparse.Namespace) -> str:
    if args.device:
        return args.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _net(sources: list[Any], args: argparse.Namespace) -> tuple[Any, str | None]:
    from ..metrics.base import MetricError
    from ..metrics.features import select_feature_net

    sides = [s for s in sources if s.kind != "stats"]
    if not sides:
        return None, None
    kinds = {s.info.kind for s in sides}
    if len(kinds) > 1:
        raise MetricError("one side is 2-D points, the other images",
                          where=" / ".join(s.label for s in sides), fix="compare like with like.")
    info = sides[0].info
    wanted = args.features or ("raw" if info.kind == "points" else "inception")
    if wanted in ("digits", "mnist") and len({int(s.info.shape[0]) for s in sides}) > 1:
        raise MetricError("the two sides have different channel counts, which the shipped "
                          "classifiers score in different spaces", where="--features",
                          fix="use --features inception.")
    net, note = select_feature_net(info, sides[0].data_name, feature_net=wanted,
                                   inception=args.inception, device=_device(args))
    return net, note


def _stats(src: Any, net: Any, args: argparse.Namespace, has_run: bool) -> dict[str, Any]:
    """mu, sigma, n and how the features were had, for one side."""
    from ..metrics.evaluate import progress_bar

    if src.kind == "stats":
        return {"mu": src.mu, "sigma": src.sigma, "n": src.meta.get("n"), "cache": "file"}
    total = (args.n or DEFAULT_N) if src.kind == "run" else _count(src, args, has_run)
    with progress_bar(not args.no_progress, total) as bar:
        return _side_stats(src, net, args, has_run, bar)


def _count(src: Any, args: argparse.Namespace, has_run: bool) -> int | None:
    count = args.n_real if args.n_real is not None else (None if has_run else args.n)
    return len(src.x) if count is None else min(count, len(src.x))


def _side_stats(src: Any, net: Any, args: argparse.Namespace, has_run: bool,
                bar: Any) -> dict[str, Any]:
    import torch

    from ..metrics.evaluate import extract
    from ..metrics.fid_inputs import source_features, stats_of

    if src.kind == "run":
        n = args.n or DEFAULT_N
        pipe = src.pipeline
        cuda = [pipe.device] if torch.device(pipe.device).type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(args.seed)
            feats = extract(bar(pipe.sample_batches(n, batch_size=args.batch_size),
                                f"generate + features ({src.label})"), {"embedding": net})
        mu, sigma = stats_of(feats)
        return {"mu": mu, "sigma": sigma, "n": n, "cache": "generated", "step": pipe.step}
    feats, cached = source_features(src, net, count=_count(src, args, has_run), seed=args.seed,
                                    batch_size=args.batch_size, cache=not args.no_cache,
                                    wrap=lambda it, label: bar(it, f"features ({label})"))
    mu, sigma = stats_of(feats)
    return {"mu": mu, "sigma": sigma, "n": len(feats), "cache": cached}


_CACHE_WORDS = {"hit": "cached features", "extended": "cache extended", "stored": "features cached",
                "recomputed": "damaged cache recomputed", "off": "not cached",
                "generated": "generated", "file": "from file"}


def _line(src: Any, stats: dict[str, Any]) -> str:
    n = stats["n"]
    if src.kind == "run":
        what = f"{n:,} samples of run {src.label} (step {stats.get('step')})"
    elif src.kind == "stats":
        what = f"statistics {src.label}" + (f" ({n:,} images)" if isinstance(n, int) else "")
    else:
        unit = "points" if getattr(src.info, "kind", "image") == "points" else "images"
        what = f"{n:,} {unit} of {src.label}"
    return f"{what}; {_CACHE_WORDS.get(stats['cache'], stats['cache'])}"


# ---------------------------------------------------------------------------- commands


def cmd_fid(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from ..metrics.fid import frechet_distance
    from ..metrics.fid_inputs import check_space
    from .common import plugin_manager

    _check(args)
    manager = plugin_manager(args)
    a, b = _open_pair(args, manager)
    net, note = _net([a, b], args)
    space = net.space if net is not None else (a.meta.get("space") or b.meta.get("space")
                                               or "unknown (two foreign statistics files)")
    notes = [note] if note else []
    for src in (a, b):  # statistics of another space are refused; foreign ones get a note
        extra = check_space(src, space, 0)
        if extra:
            notes.append(extra)
    has_run = "run" in (a.kind, b.kind)
    sa, sb = _stats(a, net, args, has_run), _stats(b, net, args, has_run)
    if len(sa["mu"]) != len(sb["mu"]):
        from ..metrics.base import MetricError

        raise MetricError(f"the two sides have {len(sa['mu'])} and {len(sb['mu'])} dimensions",
                          where=f"{args.a} / {args.b}", fix="compare statistics of one feature net.")
    value = frechet_distance(sa["mu"], sa["sigma"], sb["mu"], sb["sigma"])
    if -1e-6 < value < 0:  # round-off of identical statistics
        value = 0.0
    result = {"fid": value, "feature_space": space, "a": str(args.a), "b": str(args.b),
              "n_a": sa["n"], "n_b": sb["n"], "cache_a": sa["cache"], "cache_b": sb["cache"]}
    if notes:
        result["note"] = " ".join(notes)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    console, err = Console(), Console(stderr=True)
    console.print(f"FID {value:.4g}", markup=False, highlight=False)
    console.print(f"  A: {_line(a, sa)}\n  B: {_line(b, sb)}\n  feature space: {space}",
                  markup=False, highlight=False)
    for text in notes:
        err.print(f"[yellow]note:[/] {escape(text)}")
    return 0


def cmd_fid_stats(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..base.safeio import regular_file
    from ..metrics.base import MetricError
    from ..metrics.fid_inputs import save_stats
    from .common import plugin_manager
    from .. import __version__

    _check(args)
    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".npz":
        raise SpecError("the statistics file must end in .npz", where=args.out,
                        fix="name it e.g. ref_stats.npz.")
    if out.exists() or out.is_symlink():
        regular_file(out, what="statistics file")  # a folder, FIFO or device: refused here
        if not args.force:
            raise SpecError("the statistics file exists", where=str(out),
                            fix="give another name, or --force to replace it.")
    if Path(args.src).suffix.lower() == ".npz":
        raise MetricError("the source is already a statistics file", where=args.src,
                          fix="give a folder, an archive, a run directory or a data set name.")
    manager = plugin_manager(args)
    src = _open(args.src, args, manager)
    net, note = _net([src], args)
    stats = _stats(src, net, args, src.kind == "run")
    save_stats(out, stats["mu"], stats["sigma"],
               {"space": net.space, "features": net.identity(), "n": stats["n"],
                "source": src.label, "seed": args.seed, "gantk": __version__})
    Console().print(f"wrote {out}: mu and sigma of {_line(src, stats)}, {net.space}",
                    markup=False, highlight=False)
    if note:
        Console(stderr=True).print(f"note: {note}", markup=False, highlight=False)
    return 0
