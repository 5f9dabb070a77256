"""``gantk plot RUN_DIR``: a run's losses (``metrics.jsonl``) and scores (``eval.jsonl``) as
PNG figures in ``RUN_DIR/plots/`` (see docs/metrics.md).

    gantk plot RUN_DIR [--out DIR]

Losses are lines against the step. A score evaluated at two or more steps is a line in its
score's panel (one line per feature space, sampling transform, options and source, so curves of
different settings never join); a score evaluated once beside such a line is a marked point on
that panel; a score evaluated only once is printed as a table in the terminal, not drawn (a panel
of one dot says nothing).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from ..base.errors import GantkError
from ..base.safeio import read_jsonl as _read_jsonl
from .eval_cmd import RunFileError, _fmt

#: a score evaluated once: (score, series, step, value); value None when it was never finite
Single = tuple[str, str, int | None, float | None]


def add_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add ``plot`` to the ``gantk`` subcommands."""

    p = subparsers.add_parser("plot", parents=[common], help="plot losses and scores of a run",
                              description="Write plots/losses.png (metrics.jsonl) and "
                                          "plots/metrics.png (eval.jsonl) in the run directory.")
    p.add_argument("run", help="RUN_DIR")
    p.add_argument("--out", help="folder for the PNG files (default RUN_DIR/plots)")
    p.set_defaults(func=cmd_plot)


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
                registry: Any = None) -> tuple[Path | None, list[str], list[Single], int]:
    """One panel per score evaluated at two or more steps (one line per series); a single
    evaluation of a score that has a panel is a marked point on it. Returns the written path
    (None when no score has two evaluations: nothing is drawn), the scores drawn, the single
    evaluations left for the terminal and how many were marked on a panel."""

    lines, singles = score_series(rows, registry=registry)
    marked = [s for s in singles if s[0] in lines and s[3] is not None]
    rest = [s for s in singles if s not in marked]
    if not lines:
        return None, [], rest, 0

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 if len(lines) > 1 else 1
    nrows = math.ceil(len(lines) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 2.8 * nrows + 0.5), squeeze=False)
    for ax in axes.flat[len(lines):]:
        ax.axis("off")
    for ax, (key, series) in zip(axes.flat, sorted(lines.items()), strict=False):
        for label, pts in series.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, lw=1, label=label)
        for _, label, step, value in (s for s in marked if s[0] == key):
            ax.scatter([step], [value], marker="*", s=80, zorder=3, color="C3",
                       label=f"{label}: once, {_fmt(key, value)}")
        ax.set_title(key, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
        ax.set_xlabel("step")
    from ..sample.viz import save_figure  # torch: only when a figure is drawn

    return (save_figure(fig, path, title or "evaluation scores"), sorted(lines), rest,
            len(marked))


def _print_singles(console: Any, singles: list[Single], where: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"evaluated once ({where.name})", title_justify="left")
    for col in ("score", "series", "step", "value"):
        table.add_column(col, justify="right" if col in {"step", "value"} else "left")
    for key, label, step, value in singles:
        table.add_row(escape(key), escape(label), "" if step is None else str(step),
                      "-" if value is None else _fmt(key, value))
    console.print(table)


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
    if not evals:
        console.print(f"no evaluations in {eval_file} yet: run `gantk eval {run}` or train with "
                      "train.eval_every and train.eval_metrics set; metrics.png not written.",
                      highlight=False, markup=False)
        return 0
    from .common import plugin_manager

    png, drawn, rest, marked = plot_scores(evals, out / "metrics.png", title,
                                   registry=plugin_manager(args).registry)
    if rest:
        _print_singles(console, rest, eval_file)
    if png is None:
        console.print(f"metrics.png not written: every score in {eval_file} was evaluated once "
                      "(the table above); train with train.eval_every set for curves over "
                      "training.", highlight=False, markup=False)
    else:
        extra = (f"; {marked} single evaluation{'s' if marked > 1 else ''} marked with a star"
                 if marked else "")
        console.print(f"wrote {png} (lines for {', '.join(drawn)}{extra})", highlight=False,
                      markup=False)
    return 0
