"""Sweeps: a grid of stacks x options x seeds, each run an ordinary run directory, summarised as
mean +- std over seeds (see docs/sweeps.md for the file format).

::

    from gantk.sweeps import Sweep
    summary = Sweep.from_file("examples/sweeps/mnist5k_msgan.toml").run("out/sweep", jobs=2)
    summary.row("method=msgan").stats["fid"]     # {"mean", "std", "n", "values", "diff"}

Layout: ``OUT/CELL/seed_S/`` is the run directory of cell CELL with seed S (``gantk sample``,
``eval`` and ``plot`` work on it), ``OUT/CELL/seed_S/sweep_result.json`` marks it finished (the
sweep's evaluation), ``OUT/summary.{md,json,csv,png}`` the table. Running a sweep again skips
finished runs and resumes interrupted ones from their checkpoints.

Every run is a separate process (:mod:`gantk.sweep_worker`) started by a *launcher*: the local
process pool by default, or one a plugin returns from the ``gantk_sweep_launcher`` hook.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import GantkError, SpecError
from .safeio import read_jsonl
from .sweep_summary import Summary, summarize, write_all

RESULT_FILE = "sweep_result.json"
ERROR_FILE = "sweep_error.txt"
JOB_FILE = "sweep_job.json"
LOG_FILE = "sweep.log"


class SweepError(GantkError):
    """A sweep file that cannot be run as written."""


# ---------------------------------------------------------------------------- the file


class EvalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metrics: list[str] = Field(default_factory=list, description="metric names; default: the "
                               "data's defaults (gantk eval's)")
    n: int | None = Field(None, ge=2, description="generated samples; default 10000 (26000 for "
                          "modes on stacked digits)")
    seed: int = Field(0, description="seed of the evaluation draw")
    feature_net: str = Field("auto", description="auto, inception, digits, mnist or raw")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                               description="metric options, {prdc = {nearest_k = 3}}")
    with_: list[Any] = Field(default_factory=list, alias="with",
                             description="post-training transforms at sampling, e.g. [\"advlat_z\"]")


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field("sweep", description="title of the summary")
    base: str | None = Field(None, description="stack file the cells start from (relative to "
                             "the sweep file)")
    stack: dict[str, Any] | None = Field(None, description="the base stack inline (any stack "
                                         "file keys), instead of base")
    set: list[str] = Field(default_factory=list, description="overrides for every cell")
    axes: dict[str, Any] = Field(default_factory=dict, description="axis name -> list of values "
                                 "(the name is a --set key) or table of named override lists")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    baseline: str | None = Field(None, description="the cell the others are compared with "
                                 "(default: the first)")
    jobs: int | None = Field(None, ge=1, description="runs at once (default: --jobs, else 1)")
    threads: int | None = Field(None, ge=1, description="torch threads per run process "
                                "(default: CPU cores / jobs)")
    launcher: str = Field("local", description="local, or a launcher a plugin provides")
    eval: EvalSpec = Field(default_factory=EvalSpec)


def _label(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else (
        str(value).lower() if isinstance(value, bool) else str(value))


def _axis_values(name: str, values: Any) -> list[tuple[str, list[str]]]:
    """``[(label, overrides)]`` of one axis."""

    if isinstance(values, list):
        if not values:
            raise SweepError(f"axis {name!r} has no values", where=f"axes.{name}",
                             fix="give at least one value.")
        return [(f"{name}={_label(v).strip(chr(34))}", [f"{name}={_label(v)}"]) for v in values]
    if isinstance(values, dict):
        if not values:
            raise SweepError(f"axis {name!r} has no values", where=f"axes.{name}",
                             fix="give at least one named value.")
        out = []
        for label, ov in values.items():
            ov = [ov] if isinstance(ov, str) else ov
            if not isinstance(ov, list) or not all(isinstance(o, str) for o in ov):
                raise SweepError(f"value {label!r} of axis {name!r} must be a list of overrides",
                                 where=f"axes.{name}.{label}",
                                 fix='write e.g. msgan = ["stack=\\"backbone=dcgan + msgan\\""].')
            out.append((f"{name}={label}", list(ov)))
        return out
    raise SweepError(f"axis {name!r} must be a list of values or a table of named overrides",
                     where=f"axes.{name}", fix="see docs/sweeps.md.")


def slug(cell: str) -> str:
    """A folder name for a cell name."""

    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", cell.replace(",", "__")).strip("_") or "cell"


@dataclass
class Run:
    """One (cell, seed): an ordinary run directory."""

    cell: str
    seed: int
    overrides: list[str]
    dir: Path

    @property
    def finished(self) -> bool:
        return (self.dir / RESULT_FILE).is_file()


@dataclass
class Sweep:
    """A parsed, expanded sweep; :meth:`validate` checks it, :meth:`run` runs it."""

    spec: SweepSpec
    root: Path = Path(".")
    base: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path) -> Sweep:
        from .spec import load_toml

        path = Path(path)
        return cls.from_dict(load_toml(path), root=path.parent)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, root: str | Path = ".") -> Sweep:
        try:
            spec = SweepSpec.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise SweepError(problems, where="sweep file",
                             fix="see docs/sweeps.md for every key.") from None
        from .spec import load_toml

        root = Path(root)
        if (spec.base is None) == (spec.stack is None):
            raise SweepError("give the base stack once: base = \"STACK.toml\" or a [stack] table",
                             where="base", fix="keep one of the two.")
        base = load_toml(root / spec.base) if spec.base else copy.deepcopy(spec.stack)
        sw = cls(spec, root, base)
        names = [c for c, _ in sw.cells()]
        if len(set(names)) != len(names):
            raise SweepError("two cells have the same name", where="axes",
                             fix="give the values of each axis distinct names.")
        if spec.baseline is not None and spec.baseline not in names:
            from .errors import suggest

            hint = suggest(spec.baseline, names)
            raise SweepError(f"the baseline {spec.baseline!r} is not a cell" +
                             (f"; {hint}" if hint else ""), where="baseline",
                             fix=f"name one of: {', '.join(names)}.")
        return sw

    # ------------------------------------------------------------------ expansion
    def cells(self) -> list[tuple[str, list[str]]]:
        """``[(cell name, overrides)]``: the product of the axes (one cell without axes)."""

        axes = [_axis_values(n, v) for n, v in self.spec.axes.items()]
        if not axes:
            return [("base", list(self.spec.set))]
        out = []
        for combo in itertools.product(*axes):
            name = ",".join(label for label, _ in combo)
            out.append((name, list(self.spec.set) + [o for _, ov in combo for o in ov]))
        return out

    @property
    def baseline(self) -> str:
        return self.spec.baseline or self.cells()[0][0]

    def runs(self, out: str | Path) -> list[Run]:
        """Every (cell, seed), seed-major: every cell's first seed comes before any second seed."""

        out = Path(out)
        cells = self.cells()
        return [Run(name, seed, ov + [f"seed={seed}"], out / slug(name) / f"seed_{seed}")
                for seed in self.spec.seeds for name, ov in cells]

    # ------------------------------------------------------------------ validation
    def validate(self, *, manager: Any = None) -> None:
        """Build every cell's stack (as `gantk check` does) and resolve the metrics, so a typo
        stops the sweep before anything runs."""

        from .evaluate import resolve_metric_names
        from .pipeline import Pipeline
        from .plugins import get_plugin_manager
        from .spec import parse_spec

        manager = manager or get_plugin_manager()
        problems = []
        for name, ov in self.cells():
            try:
                Pipeline(parse_spec(self.base, ov + [f"seed={self.spec.seeds[0]}"]),
                         manager=manager, device="cpu")
            except GantkError as exc:
                problems.append(f"cell {name!r}: {exc.paragraph()}")
        try:
            names = resolve_metric_names(self.spec.eval.metrics, registry=manager.registry)
            for metric, opts in self.spec.eval.options.items():
                if metric not in names:
                    raise SpecError(f"options for {metric!r}, which is not evaluated",
                                    where=f"eval.options.{metric}", fix="add it to eval.metrics.")
                manager.registry.get(metric, "metric").make_params(opts, where=f"eval.{metric}")
        except GantkError as exc:
            problems.append(f"eval: {exc.paragraph()}")
        if problems:
            raise SweepError(f"{len(problems)} problem(s) before anything ran: " +
                             " | ".join(problems), where="sweep file",
                             fix="correct the cells named; nothing has been run.")

    # ------------------------------------------------------------------ running
    def run(self, out: str | Path, *, jobs: int | None = None, launcher: Any = None,
            on_event: Callable[[str], None] | None = None, validate: bool = True,
            manager: Any = None) -> Summary:
        """Run what is not finished, evaluate, write the summary files; returns the table."""

        from .plugins import get_plugin_manager
        from .sweep_launch import find_launcher, run_all

        out = Path(out)
        manager = manager or get_plugin_manager()
        if validate:
            self.validate(manager=manager)
        jobs = jobs or self.spec.jobs or 1
        threads = self.spec.threads or max(1, (os.cpu_count() or 1) // jobs)
        launcher = launcher or find_launcher(self.spec.launcher, jobs, manager)
        runs = self.runs(out)
        check_same_settings(runs, self.base, self.spec.eval)
        out.mkdir(parents=True, exist_ok=True)
        for r in runs:
            if not r.finished:
                write_job(r, self.base, self.spec.eval, threads)
        run_all(runs, launcher, on_event=on_event or (lambda text: None))
        return self.summarize(out, manager=manager)

    def summarize(self, out: str | Path, *, manager: Any = None, step: int | None = None
                  ) -> Summary:
        """The table from what is on disk under ``out`` (also after a partial run).

        With ``step``, the table compares the runs at that training step instead, from the
        evaluations ``train.eval_every`` appended to each run's ``eval.jsonl`` (unfinished runs
        count once they passed the step), and is written as ``summary_stepN.*``."""

        from .evaluate import _directions
        from .plugins import get_plugin_manager

        out = Path(out)
        manager = manager or get_plugin_manager()
        directions = {k: d for k, (_, d) in _directions(manager.registry).items() if d}
        records = []
        for r in self.runs(out):
            if step is not None:
                found = _eval_at_step(r.dir / "eval.jsonl", step)
                if found is not None:
                    records.append({"cell": r.cell, "seed": r.seed, "result": found})
            elif r.finished:
                records.append({"cell": r.cell, "seed": r.seed,
                                "result": json.loads((r.dir / RESULT_FILE).read_text())})
            elif (r.dir / ERROR_FILE).is_file():
                records.append({"cell": r.cell, "seed": r.seed,
                                "error": (r.dir / ERROR_FILE).read_text().strip()})
        name = self.spec.name if step is None else f"{self.spec.name} (at step {step})"
        summary = summarize(name, self.cells(), list(self.spec.seeds), self.baseline,
                            records, directions=directions)
        write_all(summary, out, "summary" if step is None else f"summary_step{step}")
        return summary


def _eval_at_step(path: Path, step: int) -> dict[str, Any] | None:
    """The last evaluation recorded at ``step`` in a run's ``eval.jsonl`` (None: none yet); a
    line torn by a kill is skipped, as everywhere logs are read."""

    found = [rec for rec in read_jsonl(path) if rec.get("step") == step]
    return found[-1] if found else None


def check_same_settings(runs: list[Run], base: dict[str, Any], ev: EvalSpec) -> None:
    """Refuse, before anything runs, to reuse run directories made with other settings: a
    finished run would otherwise be skipped and its old scores summarised under the new ones."""

    changed = []
    for r in runs:
        path = r.dir / JOB_FILE
        if not path.is_file():
            continue
        now = job_settings(r, base, ev)
        try:
            old = json.loads(path.read_text())
            same = {key: old.get(key) for key in now} == now
        except (OSError, ValueError, AttributeError):
            same = False
        if not same:
            changed.append(r)
    if changed:
        names = ", ".join(str(r.dir) for r in changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise SweepError(
            f"{len(changed)} run director{'y' if len(changed) == 1 else 'ies'} under this --out "
            f"{'was' if len(changed) == 1 else 'were'} made with other settings (base stack, "
            f"cell or --set overrides, or [eval]) than this sweep now gives: {names}",
            where=str(changed[0].dir / JOB_FILE),
            fix="use a new --out for changed settings (finished runs would otherwise be reused "
                "under the new ones), or delete those run directories to rerun them; nothing "
                "has been run.")


def job_settings(run: Run, base: dict[str, Any], ev: EvalSpec) -> dict[str, Any]:
    """The settings in a run's job file that decide its result (its cell and seed name its
    directory; a different thread count is not a different experiment)."""

    return {"base": base, "overrides": run.overrides, "eval": ev.model_dump(by_alias=True)}


def write_job(run: Run, base: dict[str, Any], ev: EvalSpec, threads: int) -> Path:
    """The worker's instructions, ``RUN_DIR/sweep_job.json`` (the stack as data, never code)."""

    run.dir.mkdir(parents=True, exist_ok=True)
    (run.dir / ERROR_FILE).unlink(missing_ok=True)
    job = {**job_settings(run, base, ev), "threads": threads, "cell": run.cell, "seed": run.seed}
    path = run.dir / JOB_FILE
    path.write_text(json.dumps(job, indent=2))
    return path


def worker_command(run_dir: Path) -> list[str]:
    """The command line that runs one job (what a cluster launcher submits)."""

    return [sys.executable, "-m", "gantk.sweep_worker", str(run_dir)]


def sweep(source: str | Path | dict[str, Any], out: str | Path, *, jobs: int | None = None,
          root: str | Path = ".", **kwargs: Any) -> Summary:
    """Run a sweep file (or dict) into ``out``; returns the summary table (see :class:`Sweep`)."""

    sw = Sweep.from_dict(source, root=root) if isinstance(source, dict) else Sweep.from_file(source)
    return sw.run(out, jobs=jobs, **kwargs)


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "ETA ?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"ETA {h}h{m:02d}m" if h else f"ETA {m}m{s:02d}s"


def now() -> float:
    return time.monotonic()
