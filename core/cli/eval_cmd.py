"""``gantk eval RUN_DIR`` and ``gantk plot RUN_DIR`` (see docs/metrics.md).

    gantk eval RUN_DIR [--metrics fid,kid,prdc,jsd,modes] [--n 10000] [--with advlat_z] [--json]
    gantk plot RUN_DIR [--out DIR]

``eval`` loads the run's newest intact checkpoint, scores ``n`` generated samples, prints a table
(or JSON) and appends the result to ``RUN_DIR/eval.jsonl``, the file ``train.eval_every`` writes.
``plot`` draws ``metrics.jsonl`` (losses) and ``eval.jsonl`` (scores) into ``RUN_DIR/plots/``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from ..base.errors import GantkError
from ..base.safeio import read_jsonl as _read_jsonl


class RunFileError(GantkError):
    """A run directory without the file a command reads, or with a damaged one."""


# ---------------------------------------------------------------------------- parser


def add_commands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add ``eval`` and ``plot`` to the ``gantk`` subcommands (``common`` carries shared flags)."""

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

    p = subparsers.add_parser("plot", parents=[common], help="plot losses and scores of a run",
                              description="Write plots/losses.png (metrics.jsonl) and "
                                          "plots/metrics.png (eval.jsonl) in the run directory.")
    p.add_argument("run", help="RUN_DIR")
    p.add_argument("--out", help="folder for the PNG files (default RUN_DIR/plots)")
    p.set_defaults(func=cmd_plot)


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


# ---------------------------------------------------------------------------- plot


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a run's log: a partial last line (a kill mid-append) is skipped with a warning,
    damage elsewhere is a clear refusal."""
    from rich.console import Console

    def warn(text: str) -> None:
        Console(stderr=True).print(f"warning: {text}", markup=False, highlight=False)

    try:
        return _read_jsonl(path, warn=warn, strict=True)
    except GantkError as exc:
        raise RunFileError(exc.message, where=exc.where,
                           fix="delete or repair that line; `gantk train` into the run directory "
                               "also rewrites the log without damaged rows.") from None


def _numeric(row: dict[str, Any], key: str) -> float | None:
    v = row.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def plot_losses(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """One panel for ``loss/*``, one per other key prefix (component terms), against step."""

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..metrics.scores import score_keys

    keys = sorted({k for r in rows for k in score_keys(r) if _numeric(r, k) is not None})
    groups: dict[str, list[str]] = {}
    for k in keys:
        groups.setdefault(k.split("/")[0] if "/" in k else "other", []).append(k)
    order = (["loss"] if "loss" in groups else []) + sorted(g for g in groups if g != "loss")
    fig, axes = plt.subplots(len(order), 1, figsize=(8, 2.6 * len(order)), sharex=True,
                             squeeze=False)
    for ax, group in zip(axes[:, 0], order, strict=True):
        for k in groups[group]:
            pts = [(r["step"], _numeric(r, k)) for r in rows
                   if "step" in r and _numeric(r, k) is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, lw=1)
        ax.set_ylabel(group)
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    from ..sample.viz import save_figure  # torch: only when a figure is drawn

    return save_figure(fig, path, title or "training losses")


def score_series(rows: list[dict[str, Any]], *, registry: Any = None
                 ) -> tuple[dict[str, dict[str, list[tuple[int, float]]]],
                            list[tuple[str, str, int | None, float | None]]]:
    """Split ``eval.jsonl`` rows into what a line can show and what it cannot.

    Returns ``(lines, singles)``: ``lines[score][series]`` holds the (step, value) points of every
    series with two or more finite points; ``singles`` holds ``(score, series, step, value)`` for
    a series evaluated once (``value`` None for a score with no finite value at all). A series is
    one (feature space, sampling transform, options, source), so scores from different feature
    spaces or settings are never joined.
    """

    from ..metrics.scores import directions as metric_directions
    from ..metrics.scores import score_keys

    directions = metric_directions(registry) if registry is not None else {}
    keys = sorted({k for r in rows for k in score_keys(r)
                   if (k not in directions or directions[k][1] is not None)})

    def series(r: dict[str, Any], key: str) -> str:
        metric = directions.get(key, ("", None))[0]
        space = {"is": r.get("is_space"), "modes": r.get("modes_space")}.get(metric) \
            or r.get("feature_space")
        label = str(space or "")
        if r.get("with"):
            label += " + " + ",".join(w["name"] if isinstance(w, dict) else str(w)
                                      for w in r["with"])
        if r.get("options"):
            label += " " + json.dumps(r["options"], separators=(",", ":"))
        return label + f" [{r.get('source', 'eval_every')}]"

    lines: dict[str, dict[str, list[tuple[int, float]]]] = {}
    singles: list[tuple[str, str, int | None, float | None]] = []
    for key in keys:
        found: dict[str, list[tuple[int, float]]] = {}
        for r in rows:
            v = _numeric(r, key)
            if v is not None and r.get("step") is not None:
                found.setdefault(series(r, key), []).append((int(r["step"]), v))
        if not found:
            singles.append((key, "no finite value", None, None))
        for label, pts in sorted(found.items()):
            if len(pts) > 1:
                lines.setdefault(key, {})[label] = sorted(pts)
            else:
                singles.append((key, label, *pts[0]))
    return lines, singles


def plot_scores(rows: list[dict[str, Any]], path: Path, title: str = "", *,
                registry: Any = None) -> tuple[Path, list[str], int]:
    """Lines for scores evaluated at two or more steps (one panel per score, one line per
    series), and a table for single evaluations, where a panel would hold one dot. Returns the
    path, the scores drawn as lines and the number of table rows."""

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines, singles = score_series(rows, registry=registry)
    cols = 2 if len(lines) > 1 else 1
    nrows = math.ceil(len(lines) / cols)
    table_h = 0.6 + 0.22 * len(singles) if singles else 0
    heights = [2.8] * nrows + ([table_h] if singles else [])
    fig = plt.figure(figsize=(6 * cols if lines else 9, sum(heights) + 0.5))
    grid = fig.add_gridspec(len(heights), cols, height_ratios=heights)
    for i, (key, series) in enumerate(sorted(lines.items())):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        for label, pts in series.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, lw=1, label=label)
        ax.set_title(key, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
        ax.set_xlabel("step")
    if singles:
        ax = fig.add_subplot(grid[-1, :])
        ax.axis("off")
        ax.set_title("evaluated once", fontsize=9)
        cells = [[key, label, "" if step is None else str(step),
                  "-" if value is None else _fmt(key, value)]
                 for key, label, step, value in singles]
        table = ax.table(cellText=cells, colLabels=["score", "series", "step", "value"],
                         loc="upper center", cellLoc="left", colLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(7)
        table.auto_set_column_width(list(range(4)))
    from ..sample.viz import save_figure  # torch: only when a figure is drawn

    return save_figure(fig, path, title or "evaluation scores"), sorted(lines), len(singles)


def cmd_plot(args: argparse.Namespace) -> int:
    from rich.console import Console

    run = Path(args.run)
    if not run.is_dir():
        raise RunFileError("no such run directory", where=str(run),
                           fix="give the --out folder of `gantk train`.")
    metrics_file = run / "metrics.jsonl"
    if not metrics_file.exists():
        raise RunFileError("the run directory has no metrics.jsonl, so there are no losses to plot",
                           where=str(metrics_file),
                           fix="train into it first (`gantk train STACK.toml --out RUN_DIR`); "
                               "losses are logged every train.log_every steps.")
    out = Path(args.out) if args.out else run / "plots"
    title = run.name
    spec = run / "spec.json"
    if spec.exists():
        try:
            d = json.loads(spec.read_text())
            parts = [f"backbone={d['backbone']['name']}"] + [m["name"] for m in d.get("methods", [])]
            title = f"{run.name}: {' + '.join(parts)} (data={d['data']['name']})"
        except (ValueError, KeyError, TypeError):
            pass
    console = Console()
    rows = read_jsonl(metrics_file)
    if not rows:
        raise RunFileError("metrics.jsonl is empty", where=str(metrics_file),
                           fix="train for at least train.log_every steps.")
    console.print(f"wrote {plot_losses(rows, out / 'losses.png', title)}", highlight=False)
    eval_file = run / "eval.jsonl"
    evals = read_jsonl(eval_file) if eval_file.exists() else []
    if evals:
        from .common import plugin_manager

        png, drawn, n_single = plot_scores(evals, out / "metrics.png", title,
                                           registry=plugin_manager(args).registry)
        parts = ([f"lines for {', '.join(drawn)}"] if drawn else []) + \
            ([f"a table of {n_single} single evaluations"] if n_single else [])
        console.print(f"wrote {png} ({'; '.join(parts)})", highlight=False, markup=False)
    else:
        console.print(f"no evaluations in {eval_file} yet: run `gantk eval {run}` or train with "
                      "train.eval_every and train.eval_metrics set; metrics.png not written.",
                      highlight=False, markup=False)
    return 0
