"""``gantk sweep SWEEP.toml --out DIR [--jobs N]``: run a grid of stacks x options x seeds and
write DIR/summary.{md,json,csv,png} (see docs/sweeps.md).

``--check`` validates every cell and prints the plan without running anything; ``--summary``
rewrites the summary files from what DIR holds (after a partial run) without starting runs;
``--only`` runs a subset of the cells; ``--set train.steps=N`` above the runs' steps extends them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

# a file or pipe gets the whole table (rich would fold it to 80 columns)
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 220)
err_console = Console(stderr=True)


def add_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("sweep", parents=[common],
                              help="run stacks x options x seeds; summary as mean +- std",
                              description="Run every cell of a sweep file as a run directory under "
                                          "DIR (finished runs are skipped, interrupted ones "
                                          "resumed) and write DIR/summary.md, .json, .csv, .png.")
    p.add_argument("sweep", help="SWEEP.toml")
    p.add_argument("--out", required=True, help="sweep directory")
    p.add_argument("--jobs", type=int, help="runs at once (default: the file's jobs, else 1); "
                                            "each run gets CPU cores / jobs torch threads")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="an override for every cell, after the file's own (repeatable), e.g. "
                        "--set train.steps=100; part of the runs' stacks: a larger "
                        "train.steps extends finished runs, any other change needs a new --out; "
                        "eval.KEY=VALUE sets the file's [eval] table instead, e.g. --set "
                        "eval.n=500")
    p.add_argument("--seeds", metavar="SEEDS",
                   help="the seeds to run and summarise instead of the file's, e.g. 0-9 or "
                        "0,1,5-7: runs of seeds already finished are kept, so a sweep grows by "
                        "seeds without retraining (fix the seeds before looking at results, "
                        "docs/sweeps.md)")
    p.add_argument("--only", action="append", metavar="CELL",
                   help="run only the cells that match (repeatable): a cell name, axis=value "
                        "pairs such as method=vanilla, or a bare value; a train_as cell brings "
                        "the runs it evaluates; the summary still covers every cell")
    p.add_argument("--check", action="store_true", help="validate and list the runs; run nothing")
    p.add_argument("--launcher", metavar="NAME",
                   help="run the jobs with this launcher instead of the file's: local, or one a "
                        "plugin provides (submitit); its settings: --set launcher.KEY=VALUE, "
                        "e.g. --set launcher.partition=gpu")
    p.add_argument("--submit", action="store_true",
                   help="with a scheduler's launcher (submitit): submit the unfinished runs and "
                        "return; --status shows progress, --summary the results, and the same "
                        "command again resubmits runs whose jobs ended unfinished")
    p.add_argument("--status", action="store_true",
                   help="show where every run stands (finished, running, submitted with its job "
                        "id and state, failed, stopped at step N); run nothing")
    p.add_argument("--summary", action="store_true",
                   help="only rewrite the summary files from DIR")
    p.add_argument("--step", type=int, metavar="N",
                   help="with --summary: compare the runs at training step N, from the "
                        "train.eval_every evaluations in their eval.jsonl (written as "
                        "summary_stepN.*; unfinished runs count once past N)")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..base.errors import SpecError
    from ..sweeping.sweeps import Sweep

    from ..sweeping.sweepfile import MAX_JOBS

    if args.jobs is not None and not 1 <= args.jobs <= MAX_JOBS:
        raise SpecError(f"--jobs {args.jobs}", where="--jobs", fix=f"use 1 to {MAX_JOBS}.")
    from .common import plugin_manager

    manager = plugin_manager(args)
    sw = Sweep.from_file(args.sweep)
    evals = [o for o in args.set or [] if o.partition("=")[0].strip().startswith("eval.")]
    launcher_sets = [o for o in args.set or []
                     if o.partition("=")[0].strip().startswith("launcher.")]
    sw.spec.set.extend(o for o in args.set or [] if o not in evals and o not in launcher_sets)
    launcher_options = launcher_settings(launcher_sets)
    if args.launcher is not None:
        sw.set_launcher(args.launcher)
    if evals:  # the sweep's [eval] table, not the stacks
        sw.set_eval(evals)
    if args.seeds is not None:
        sw.set_seeds(sweep_seeds(args.seeds))
    runs = sw.runs(args.out)
    chosen = sw.select(runs, args.only)
    if sum(map(bool, (args.check, args.summary, args.status, args.submit))) > 1:
        raise SpecError("--check, --summary, --status and --submit each do one thing",
                        where="gantk sweep", fix="give one of them.")
    if args.only and (args.summary or args.step is not None):
        raise SpecError("--only selects the runs to run; the summary always covers every cell",
                        where="--only", fix="leave out --only with --summary.")
    if args.check:
        sw.validate(manager=manager)
        check_launcher(sw, args, manager, launcher_options, "the launcher is not usable here")
        finished = sum(r.finished for r in runs)
        console.print(f"[green]ok[/]: {len(sw.cells())} cell(s) x {len(sw.spec.seeds)} seed(s) = "
                      f"{len(runs)} run(s), {finished} already finished; baseline {sw.baseline!r}")
        if args.only:
            console.print(f"--only: {len(chosen)} of these run(s) would run: "
                          f"{', '.join(sorted({r.cell for r in chosen}))}", markup=False)
        lines = [f"  {cell.name}: " + (cell.describe() if cell.trained_in
                                         else ' '.join(cell.overrides) or '(base stack)')
                 for cell in sw.plan()]
        console.file.write("\n".join(lines) + "\n")  # plain: rich takes ~3 ms a line
        from ..sweeping.sweeps import check_same_settings

        for r, was, new in check_same_settings(chosen, sw.base, sw.spec.eval):
            console.print(f"extends {r.dir}: train.steps {was} -> {new}", markup=False)
        return 0
    if args.status:
        return show_status(sw, args, manager, launcher_options)
    if args.step is not None and not args.summary:
        raise SpecError("--step only applies to --summary", where="--step",
                        fix="add --summary (the runs are compared from their eval.jsonl).")
    if args.summary:
        summary = sw.summarize(args.out, manager=manager, step=args.step)
    else:
        summary = sw.run(args.out, jobs=args.jobs, manager=manager, only=args.only,
                         submit=args.submit, launcher_options=launcher_options,
                         on_event=lambda text: err_console.print(text, markup=False,
                                                                 highlight=False))
        if args.submit:
            console.print(f"submitted {len(summary.submitted)} run(s)"
                          + (f"; {len(summary.waiting)} wait for the runs they evaluate (the "
                             "same command submits them once those have finished)"
                             if summary.waiting else "")
                          + f". Progress: gantk sweep {args.sweep} --out {args.out} --status; "
                            f"results: ... --summary", markup=False, highlight=False)
            return 0
    print_summary(summary)
    for note in summary.notes:
        err_console.print(f"warning: {note}", markup=False, highlight=False)
    failed = [(c.cell, s, e) for c in summary.cells for s, e in c.failed.items()]
    for cell, seed, err in failed:
        err_console.print(f"failed: {cell} seed {seed}: {err}", markup=False, highlight=False)
    if summary.stopped:
        err_console.print(f"stopped (not failed; the same command resumes them): "
                          f"{', '.join(summary.stopped)}", markup=False, highlight=False)
    stem = "summary" if args.step is None else f"summary_step{args.step}"  # --step needs --summary
    console.print(f"wrote {args.out}/{stem}.md, .json, .csv, .png"
                  + (f", {stem}_curves.png" if summary.curves else ""), markup=False)
    return 1 if failed or summary.stopped else 0


def launcher_settings(items: list[str]) -> dict[str, Any]:
    """``--set launcher.KEY=VALUE`` items as the [launcher] table's settings."""

    from ..stack.spec import parse_value

    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key.strip().removeprefix("launcher.")] = parse_value(value.strip())
    return out


def check_launcher(sw: Any, args: argparse.Namespace, manager: Any, options: dict[str, Any],
                   what: str) -> Any:
    """The sweep's launcher with its settings checked (a bad setting is refused); None, with a
    warning, when its plugin or scheduler is missing here (``what`` says what is lost)."""

    from pathlib import Path

    from ..base.errors import PluginError
    from ..sweeping.launch import find_launcher

    if sw.spec.launcher_name == "local" and not (sw.spec.launcher_options or options):
        return None
    try:
        return find_launcher(sw.spec.launcher_name, args.jobs or sw.spec.jobs or 1, manager,
                             {**sw.spec.launcher_options, **options}, Path(args.out))
    except PluginError as exc:
        err_console.print(f"warning: {what}: {exc.paragraph()}", markup=False, highlight=False)
        return None


def show_status(sw: Any, args: argparse.Namespace, manager: Any,
                options: dict[str, Any]) -> int:
    """``--status``: a table of every run's state, read from disk and the launcher's records."""

    from ..sweeping.status import STATES, run_status

    launcher = check_launcher(sw, args, manager, options, "no job states")
    rows = run_status(sw.select(sw.runs(args.out), args.only), launcher)
    table = Table(title=f"{sw.spec.name}: {args.out}", title_justify="left")
    for col in ("cell", "seed", "state", "step", "detail"):
        table.add_column(col, overflow="fold", max_width=60 if col == "detail" else None)
    for row in rows:
        table.add_row(row["cell"], str(row["seed"]), row["state"],
                      "" if row["step"] is None else str(row["step"]), row["detail"])
    console.print(table)
    counts = {s: sum(r["state"] == s for r in rows) for s in STATES}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {len(rows)} "
                  "run(s)", markup=False, highlight=False)
    return 0


def sweep_seeds(text: str) -> list[int]:
    """``--seeds``: counted before it is expanded, so ``0-2000000`` is refused at once."""

    from ..base.errors import SpecError
    from ..sample.sampling import parse_seeds
    from ..sweeping.sweepfile import MAX_SEEDS

    total = 0
    for item in str(text).split(","):
        lo, dash, hi = item.strip().partition("-")
        total += int(hi) - int(lo) + 1 if dash and lo.isdigit() and hi.isdigit() else 1
    if total > MAX_SEEDS:
        raise SpecError(f"--seeds {text} gives {total:,} seeds, more than the {MAX_SEEDS:,} a "
                        "sweep runs (each seed is one run of every cell)", where="--seeds",
                        fix="give fewer seeds, e.g. 0-9 (a sweep grows by seeds later without "
                            "retraining the ones it has).")
    seeds = parse_seeds(text, where="--seeds")
    if len(seeds) < total:  # parse_seeds drops repeats; a sweep names each seed once
        raise SpecError(f"--seeds {text} names {total - len(seeds)} seed(s) more than once "
                        "(each seed is one run per cell)", where="--seeds",
                        fix="name each seed once, e.g. 0-4 or 0,2,5-7.")
    return seeds


def print_summary(summary: Any) -> None:
    """The verdicts (primary keys first), the means, the baseline's convergence: tables that fit
    80 columns (summary.md and .csv hold every number)."""
    from ..sweeping.report import effect, legend, mean_sd, p_text, verdict_text

    primary = summary.protocol.get("primary") or []
    shown = [k for k in primary if k in summary.keys] or summary.keys[:2]
    table = Table(title=f"{summary.name}: mean ± std over seeds", title_justify="left")
    table.add_column("cell", overflow="fold", max_width=28)
    table.add_column("n", justify="right")
    for k in shown:
        table.add_column(k + (" (primary)" if k in primary else ""), overflow="fold")
    for c in summary.cells:
        ns = sorted({st["n"] for st in c.stats.values()}) or [0]
        table.add_row(c.cell + (" (baseline)" if c.cell == summary.baseline else ""),
                      "/".join(map(str, ns)), *(mean_sd(c.stats.get(k)) for k in shown))
    console.print(table)
    rows = [v for v in summary.verdicts if v["primary"]] or summary.verdicts
    rest = [v for v in summary.verdicts if v not in rows]
    for title, group in (("verdicts", rows), ("secondary verdicts", rest)):
        if not group:
            continue
        vt = Table(title=f"{title} against {summary.baseline}", title_justify="left")
        vt.add_column("cell", overflow="fold", max_width=24)
        vt.add_column("key", overflow="fold", max_width=16)
        vt.add_column("Δ [95% CI]", overflow="fold")
        vt.add_column("p Holm", justify="right")
        vt.add_column("verdict", overflow="fold")
        for v in group:
            vt.add_row(v["cell"], v["metric"], effect(v), p_text(v["p_adj"]),
                       verdict_text(v, short=True) + f" {v['k_better']}/{v['n']}")
        console.print(vt)
    for line in legend(summary):
        console.print(line, markup=False, highlight=False)
    for k, v in summary.spaces.items():
        console.print(f"{k}: {v}", markup=False)
    from ..sweeping.report import convergence_lines

    for line in convergence_lines(summary):
        console.print(f"baseline convergence, {line}", markup=False, highlight=False)
