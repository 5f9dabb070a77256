"""``gantk eval RUN_DIR`` (see docs/metrics.md; ``gantk plot`` is :mod:`.plot_cmd`).

    gantk eval RUN_DIR [--metrics fid,kid,prdc,jsd,modes] [--n 10000] [--with advlat_z] [--json]

``eval`` loads the run's newest intact checkpoint, scores ``n`` generated samples, prints a table
(or JSON) and appends the result to ``RUN_DIR/eval.jsonl``, the file ``train.eval_every`` writes.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from ..base.errors import GantkError


class RunFileError(GantkError):
    """A run directory without the file a command reads, or with a damaged one."""


# ---------------------------------------------------------------------------- parser


def add_commands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add ``eval`` to the ``gantk`` subcommands (``common`` carries shared flags)."""

    p = subparsers.add_parser("eval", parents=[common], help="score a trained run (FID, PRDC, ...)",
                              description="Score a run's samples against its data; the result is "
                                          "printed and appended to RUN_DIR/eval.jsonl.")
    p.add_argument("run", help="RUN_DIR or a checkpoint file")
    p.add_argument("--metrics", action="append", metavar="A,B",
                   help="metrics or result keys, comma separated (default: the data's defaults: "
                        "points modes,prdc; digits fid,kid,prdc,jsd,is,modes)")
    p.add_argument("--n", type=int, default=None,
                   help="generated samples (default 10000; 26000 for modes on stacked digits)")
    p.add_argument("--n-real", type=int, default=None,
                   help="real images compared against: a seeded random subset (default: --n; "
                        "give the data set's size or more for all of them, as fid50k_full)")
    p.add_argument("--with", dest="with_", action="append", metavar="NAME",
                   help="sample through a post-training transform, e.g. --with advlat_z")
    p.add_argument("--with-set", action="append", metavar="NAME.KEY=VALUE",
                   help="an option of a --with transform, e.g. advlat_z.steps=50")
    p.add_argument("--metric-set", action="append", metavar="METRIC.KEY=VALUE",
                   help="a metric option, e.g. prdc.nearest_k=3 or modes.min_count=20")
    p.add_argument("--features", default="auto",
                   choices=["auto", "inception", "digits", "mnist", "raw"],
                   help="feature space (auto: the digits classifier on digits, the MNIST "
                        "classifier on mnist5k, stacked_mnist5k and mnist unless --inception is "
                        "given, Inception on other images, raw coordinates on points)")
    p.add_argument("--inception", metavar="PATH",
                   help="the Inception weights pt_inception-2015-12-05-6726825d.pth or its folder "
                        "(default: torch.hub's checkpoint folder; downloaded and verified on "
                        "first use)")
    p.add_argument("--batch-size", type=int, default=500, help="generate and score in batches")
    p.add_argument("--step", type=int, help="use the checkpoint of this step")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample draw")
    p.add_argument("--device", help="cpu, cuda, ... (default: the run's)")
    p.add_argument("--ref", choices=["train", "test"], default="train",
                   help="real split to compare against (test: data sets with a split option)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute the real set's features instead of using the cache")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-save", action="store_true", help="do not append to eval.jsonl")
    p.set_defaults(func=cmd_eval)


# ---------------------------------------------------------------------------- eval


_COUNTS = {"modes_covered", "modes_total", "jsd_bins"}


def _fmt(key: str, value: Any) -> str:
    """Three significant digits (whole numbers from 100 up): one evaluation's sampling noise
    (n generated samples, n real) is about a per cent of a score at best, so a fourth digit is
    noise; ``--json`` and eval.jsonl keep every digit."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan (undefined)"
        if key in _COUNTS and value.is_integer():
            return str(int(value))
        if value == 0 or not math.isfinite(value):
            return str(value)
        decimals = min(6, max(0, 2 - math.floor(math.log10(abs(value)))))
        return f"{value:.{decimals}f}"
    return str(value)


def _space_of(metric: str, result: dict[str, Any]) -> str:
    key = {"is": "is_space", "modes": "modes_space"}.get(metric, "feature_space")
    return str(result.get(key) or result.get("feature_space") or "(no feature net)")


def cmd_eval(args: argparse.Namespace) -> int:
    from ..facade.pipeline import Pipeline
    from ..metrics.evaluate import default_metrics, evaluate, record_eval, resolve_metric_names
    from .common import check_count, parse_named_options, parse_with, plugin_manager

    if args.n is not None:  # None: the data's default sample count (evaluate's)
        check_count(args.n, "--n", 1_000_000)
    if args.n_real is not None:
        check_count(args.n_real, "--n-real", 10_000_000)
    check_count(args.batch_size, "--batch-size", 65_536)
    manager = plugin_manager(args)
    names = resolve_metric_names(args.metrics, registry=manager.registry) if args.metrics else None
    options = parse_named_options(args.metric_set, flag="--metric-set",
                                  example="prdc.nearest_k=3")
    with_ = parse_with(args) or None
    pipe = Pipeline.load(args.run, device=args.device, step=args.step, manager=manager)
    result = evaluate(pipe, metrics=names, n=args.n, with_=with_, batch_size=args.batch_size,
                      options=options, feature_net=args.features, inception=args.inception,
                      n_real=args.n_real, seed=args.seed, ref=args.ref,
                      cache=not args.no_cache, progress=not args.no_progress)
    if pipe.world.rank != 0:  # under torchrun: every rank scored its share; rank 0 reports
        return 0
    stored, failure = None, None
    if not args.no_save and pipe.run_dir is not None:
        names = names or resolve_metric_names(
            default_metrics(pipe.data_info, pipe.spec.data.name, inception=args.inception),
            registry=manager.registry)
        try:  # a read-only run directory must not cost the scores: they are printed regardless
            stored = record_eval(pipe.run_dir, result, step=pipe.step, metrics=names,
                                 source="gantk eval", seed=args.seed, options=options or None,
                                 **{"with": pipe.sample_transforms(with_)})
        except (GantkError, OSError) as exc:
            failure = exc
    if args.json:  # strict JSON: an undefined score (NaN) is null
        safe = {k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in {"step": pipe.step, **result}.items()}
        print(json.dumps(safe, indent=2))
    else:
        _print_eval(args, pipe, result, manager, with_, stored)
    if failure is not None:
        from .common import err_console

        text = failure.paragraph() if isinstance(failure, GantkError) else str(failure)
        err_console.print(f"error: the scores above were computed but could not be appended to "
                            f"{pipe.run_dir / 'eval.jsonl'}: {text} Fix: make the run directory "
                            "writable and evaluate again, or keep the printed scores (--no-save "
                            "skips storing them).", markup=False, highlight=False)
        return 2
    return 0


def _print_eval(args: argparse.Namespace, pipe: Any, result: dict[str, Any], manager: Any,
                with_: Any, stored: Path | None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..metrics.scores import directions as metric_directions

    console, err = Console(), Console(stderr=True)
    directions = metric_directions(manager.registry)
    applied = pipe.sample_transforms(with_)
    console.print(f"{pipe.spec.shorthand}, step {pipe.step}, {args.ref} reference" +
                  (f", sampled with {', '.join(a['name'] for a in applied)}" if applied else ""),
                  markup=False, highlight=False)
    table = Table()
    for col in ("metric", "value", "better", "from"):
        table.add_column(col)
    used: dict[str, list[str]] = {}
    for key, value in result.items():
        if key not in directions:
            continue
        metric, direction = directions[key]
        arrow = {"min": "lower", "max": "higher"}.get(direction or "", "")
        table.add_row(key, _fmt(key, value), arrow, metric, style=None if direction else "dim")
        if metric not in used.setdefault(_space_of(metric, result), []):
            used[_space_of(metric, result)].append(metric)
    console.print(table)
    for space, metrics in used.items():
        console.print(f"{', '.join(metrics)}: {space}", markup=False, highlight=False)
    cache = {"hit": "cached features reused", "stored": "features cached",
             "extended": "cached features reused, missing rows added",
             "recomputed": "damaged cache recomputed", "off": "not cached"}.get(str(result.get("ref_cache")), "")
    console.print(f"n={result['n']} generated, {result['n_real']} real ({args.ref}; {cache}), "
                  f"{result['seconds']:.1f} s" +
                  ("" if stored is None else f"; appended to {stored}"),
                  markup=False, highlight=False)
    if "note" in result:
        err.print(f"[yellow]note:[/] {escape(str(result['note']))}")
