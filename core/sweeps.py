"""Sweeps: a grid of stacks x options x seeds, each run an ordinary run directory, summarised as
mean +- std over seeds (see docs/sweeps.md for the file format).

::

    from gantk.sweeps import Sweep
    summary = Sweep.from_file("examples/sweeps/mnist5k_msgan.toml").run("out/sweep", jobs=2)
    summary.row("method=msgan").stats["fid"]     # {"mean", "std", "n", "values", "diff"}

Layout: ``OUT/CELL/seed_S/`` is the run directory of cell CELL with seed S (``gantk sample``,
``eval`` and ``plot`` work on it), ``OUT/CELL/seed_S/sweep_result.json`` marks it finished (the
sweep's evaluation), ``OUT/summary.{md,json,csv,png}`` the table. Running a sweep again skips
finished runs and resumes interrupted ones from their checkpoints; run with a larger
``train.steps``, it extends finished runs (:func:`check_same_settings`).

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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import GantkError, SpecError
from .safeio import read_jsonl
from .sweep_report import write_all
from .sweep_summary import Summary, curves, final_scores, summarize
from .sweep_verdicts import FINAL, last_k_label, run_curves, trends, verdicts

RESULT_FILE = "sweep_result.json"
ERROR_FILE = "sweep_error.txt"
SWEEP_LOCK = ".sweep.lock"  # held by the `gantk sweep` process running into OUT
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


class StatsSpec(BaseModel):
    """How the summary turns per-seed scores into verdicts (docs/sweeps.md, "Verdicts")."""

    model_config = ConfigDict(extra="forbid")
    primary: list[str] = Field(default_factory=list, description="the declared primary score "
                               "key(s), e.g. [\"fid\"]: Holm-corrected over the cells; every "
                               "other key is secondary, corrected over keys and cells")
    test: Literal["t", "wilcoxon", "permutation"] = Field(
        "t", description="paired test per cell and key: t (paired t-test), wilcoxon (signed "
        "rank; needs 6+ seeds to reach p < 0.05), permutation (exact sign flips)")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="family-wise error rate of each family")
    last_k: int = Field(0, ge=0, description="0: score a run by its final evaluation; k >= 3: by "
                        "the mean of its last k in-training evaluations (train.eval_every), "
                        "where both cells of a comparison have them")

    @field_validator("last_k")
    @classmethod
    def _k(cls, v: int) -> int:
        if v in (1, 2):
            raise ValueError("last_k is 0 (the final evaluation) or at least 3 evaluations")
        return v


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
    stats: StatsSpec = Field(default_factory=StatsSpec)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if any(s < 0 or s >= 2 ** 63 for s in v):
            raise ValueError("seeds are integers between 0 and 2**63 - 1")
        if len(set(v)) != len(v):
            raise ValueError(f"seed(s) {sorted({s for s in v if v.count(s) > 1})} appear twice: "
                             "each seed is one run per cell")
        return v


def _label(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else (
        str(value).lower() if isinstance(value, bool) else str(value))


@dataclass
class Cell:
    """A cell, or one value of one axis (a one-axis cell): its name (``axis=value,...``), the
    overrides its networks are trained with, and for a cell that only changes sampling, the cell
    whose runs it evaluates (``trained_in``, from ``train_as``) with extra transforms."""

    name: str
    overrides: list[str]
    trained_in: str | None = None
    with_: list[Any] = field(default_factory=list)

    def describe(self) -> str:
        """What a ``train_as`` cell evaluates, e.g. ``the networks of method=vanilla, sampled
        with advlat_z(steps=300)``."""

        return (f"the networks of {self.trained_in}, sampled with "
                f"{', '.join(_with_name(w) for w in self.with_)}")


def _with_name(item: Any) -> str:
    if isinstance(item, dict):
        opts = ", ".join(f"{k}={v}" for k, v in item.items() if k != "name")
        return f"{item.get('name')}({opts})" if opts else str(item.get("name"))
    return str(item)


def _shared_value(name: str, label: str, value: dict[str, Any]) -> Cell:
    where = f"axes.{name}.{label}"
    unknown = sorted(set(value) - {"train_as", "with"})
    if unknown or not isinstance(value.get("train_as"), str) or not value.get("with"):
        raise SweepError(f"value {label!r} of axis {name!r} is a table, which must hold exactly "
                         "train_as (the value whose trained networks it evaluates) and with "
                         "(post-training transforms at sampling)" +
                         (f"; unknown key(s) {', '.join(unknown)}" if unknown else ""),
                         where=where, fix='write e.g. advlat_z = { train_as = "vanilla", '
                                         'with = ["advlat_z"] }, or give a list of overrides.')
    if not isinstance(value["with"], list):
        raise SweepError(f"with of value {label!r} must be a list", where=f"{where}.with",
                         fix='write e.g. with = ["advlat_z"].')
    return Cell(f"{name}={label}", [], f"{name}={value['train_as']}", list(value["with"]))


def _axis_values(name: str, values: Any) -> list[Cell]:
    """The values of one axis; a ``train_as`` value gets its target's overrides."""

    if isinstance(values, list):
        if not values:
            raise SweepError(f"axis {name!r} has no values", where=f"axes.{name}",
                             fix="give at least one value.")
        return [Cell(f"{name}={_label(v).strip(chr(34))}", [f"{name}={_label(v)}"])
                for v in values]
    if isinstance(values, dict):
        if not values:
            raise SweepError(f"axis {name!r} has no values", where=f"axes.{name}",
                             fix="give at least one named value.")
        out = []
        for label, ov in values.items():
            if isinstance(ov, dict):
                out.append(_shared_value(name, label, ov))
                continue
            ov = [ov] if isinstance(ov, str) else ov
            if not isinstance(ov, list) or not all(isinstance(o, str) for o in ov):
                raise SweepError(f"value {label!r} of axis {name!r} must be a list of overrides "
                                 "or a { train_as, with } table",
                                 where=f"axes.{name}.{label}",
                                 fix='write e.g. msgan = ["stack=\\"backbone=dcgan + msgan\\""].')
            out.append(Cell(f"{name}={label}", list(ov)))
        trained = {v.name: v for v in out if v.trained_in is None}
        for v in out:
            if v.trained_in is not None:
                if v.trained_in not in trained:
                    from .errors import suggest

                    hint = suggest(v.trained_in.split("=", 1)[1],
                                   [t.split("=", 1)[1] for t in trained])
                    raise SweepError(f"{v.name} is trained as {v.trained_in!r}, which is not a "
                                     f"value of axis {name!r} with overrides of its own" +
                                     (f"; {hint}" if hint else ""),
                                     where=f"axes.{name}.{v.name.split('=', 1)[1]}.train_as",
                                     fix=f"name one of: {', '.join(t.split('=', 1)[1] for t in trained)}.")
                v.overrides = list(trained[v.trained_in].overrides)
        return out
    raise SweepError(f"axis {name!r} must be a list of values or a table of named overrides",
                     where=f"axes.{name}", fix="see docs/sweeps.md.")


def slug(cell: str) -> str:
    """A folder name for a cell name."""

    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", cell.replace(",", "__")).strip("_") or "cell"


@dataclass
class Run:
    """One (cell, seed): an ordinary run directory. A run of a ``train_as`` cell trains nothing:
    it evaluates the networks of ``source`` (the run of the cell it shares training with) with
    its ``with_`` transforms added at sampling, and holds only that evaluation."""

    cell: str
    seed: int
    overrides: list[str]
    dir: Path
    source: Path | None = None
    with_: list[Any] = field(default_factory=list)

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
    def plan(self) -> list[Cell]:
        """The cells: the product of the axes (one cell without axes). A combination with
        ``train_as`` values is trained in the cell named with their targets instead."""

        axes = [_axis_values(n, v) for n, v in self.spec.axes.items()]
        if not axes:
            return [Cell("base", list(self.spec.set))]
        out = []
        for combo in itertools.product(*axes):
            shared = any(v.trained_in for v in combo)
            out.append(Cell(",".join(v.name for v in combo),
                            list(self.spec.set) + [o for v in combo for o in v.overrides],
                            ",".join(v.trained_in or v.name for v in combo) if shared else None,
                            [w for v in combo for w in v.with_]))
        return out

    def cells(self) -> list[tuple[str, list[str]]]:
        """``[(cell name, overrides its networks are trained with)]``, in :meth:`plan`'s order."""

        return [(c.name, c.overrides) for c in self.plan()]

    @property
    def baseline(self) -> str:
        return self.spec.baseline or self.cells()[0][0]

    def runs(self, out: str | Path) -> list[Run]:
        """Every (cell, seed), seed-major: every cell's first seed comes before any second seed."""

        out = Path(out)
        cells = self.plan()
        return [Run(c.name, seed, c.overrides + [f"seed={seed}"], out / slug(c.name) / f"seed_{seed}",
                    out / slug(c.trained_in) / f"seed_{seed}" if c.trained_in else None, c.with_)
                for seed in self.spec.seeds for c in cells]

    def select(self, runs: list[Run], only: list[str] | None) -> list[Run]:
        """The runs of the cells ``only`` names (all for None). An item is ``axis=value``
        pairs joined by commas (a cell matches when it has them all: ``method=vanilla`` picks
        that value in every combination) or a bare value name. A selected ``train_as`` cell
        brings the run it evaluates (skipped as usual if it has finished)."""

        if not only:
            return runs
        cells = [c.name for c in self.plan()]

        def matches(cell: str, item: str) -> bool:
            parts = set(cell.split(","))
            want = [w.strip() for w in item.split(",") if w.strip()]
            return bool(want) and all(w in parts if "=" in w else
                                      any(p.split("=", 1)[-1] == w for p in parts) for w in want)

        chosen = set()
        for item in only:
            hit = {c for c in cells if matches(c, item)}
            if not hit:
                from .errors import suggest

                values = sorted({p for c in cells for p in c.split(",")})
                hint = suggest(item, values + [v.split("=", 1)[-1] for v in values])
                raise SweepError(f"{item!r} matches no cell" + (f"; {hint}" if hint else ""),
                                 where="--only", fix=f"name a cell or an axis value: "
                                                     f"{', '.join(values)}.")
            chosen |= hit
        picked = [r for r in runs if r.cell in chosen]
        sources = {r.source for r in picked if r.source is not None}
        return [r for r in runs if r.cell in chosen or r.dir in sources]

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
        built: dict[tuple[str, ...], Pipeline] = {}
        for cell in self.plan():
            try:
                key = tuple(cell.overrides)
                if key not in built:
                    built[key] = Pipeline(parse_spec(self.base, cell.overrides +
                                                     [f"seed={self.spec.seeds[0]}"]),
                                          manager=manager, device="cpu")
                if cell.with_:  # the sampling transforms must build on the trained stack
                    built[key]._extra_components(cell.with_)
            except GantkError as exc:
                problems.append(f"cell {cell.name!r}: {exc.paragraph()}")
        try:
            names = resolve_metric_names(self.spec.eval.metrics, registry=manager.registry)
            for metric, opts in self.spec.eval.options.items():
                if metric not in names:
                    raise SpecError(f"options for {metric!r}, which is not evaluated",
                                    where=f"eval.options.{metric}", fix="add it to eval.metrics.")
                manager.registry.get(metric, "metric").make_params(opts, where=f"eval.{metric}")
        except GantkError as exc:
            problems.append(f"eval: {exc.paragraph()}")
        from .evaluate import _directions

        known = {k for k, (_, d) in _directions(manager.registry).items() if d}
        for key in self.spec.stats.primary:
            if key not in known:
                from .errors import suggest

                hint = suggest(key, sorted(known))
                problems.append(f"stats.primary: {key!r} is not a score any installed metric "
                                f"gives" + (f"; {hint}" if hint else "") +
                                f" (scores: {', '.join(sorted(known))})")
        if problems:
            raise SweepError(f"{len(problems)} problem(s) before anything ran: " +
                             " | ".join(problems), where="sweep file",
                             fix="correct the cells named; nothing has been run.")

    # ------------------------------------------------------------------ running
    def run(self, out: str | Path, *, jobs: int | None = None, launcher: Any = None,
            on_event: Callable[[str], None] | None = None, validate: bool = True,
            manager: Any = None, only: list[str] | None = None) -> Summary:
        """Run what is not finished, evaluate, write the summary files; returns the table.

        ``only`` runs just the cells that match (see :meth:`select`); the summary covers all."""

        from .plugins import get_plugin_manager
        from .sweep_launch import find_launcher, run_all

        out = Path(out)
        manager = manager or get_plugin_manager()
        if validate:
            self.validate(manager=manager)
        jobs = jobs or self.spec.jobs or 1
        threads = self.spec.threads or max(1, (os.cpu_count() or 1) // jobs)
        launcher = launcher or find_launcher(self.spec.launcher, jobs, manager)
        runs = self.select(self.runs(out), only)
        from .runlock import run_lock

        with run_lock(out, name=SWEEP_LOCK, error=SweepError,
                      doing="is running a sweep into this directory",
                      fix="wait for it to finish, or stop it (Ctrl-C, or kill -INT with that pid) "
                          "and run this command again: it resumes every run; to run another "
                          "sweep at the same time give it its own --out."):
            extend(check_same_settings(runs, self.base, self.spec.eval))
            for r in runs:
                if not r.finished:
                    write_job(r, self.base, self.spec.eval, threads)
            counts = run_all(runs, launcher, on_event=on_event or (lambda text: None))
        return self.summarize(out, manager=manager,
                              stopped=[f"{r.cell} seed {r.seed}" for r in counts["stopped"]])

    def summarize(self, out: str | Path, *, manager: Any = None, step: int | None = None,
                  stopped: list[str] | None = None) -> Summary:
        """The table from what is on disk under ``out`` (also after a partial run).

        With ``step``, the table compares the runs at that training step instead, from the
        evaluations ``train.eval_every`` appended to each run's ``eval.jsonl`` (unfinished runs
        count once they passed the step), and is written as ``summary_stepN.*``."""

        from .evaluate import _directions
        from .plugins import get_plugin_manager

        out = Path(out)
        manager = manager or get_plugin_manager()
        directions = {k: d for k, (_, d) in _directions(manager.registry).items() if d}
        records, other_steps = [], []
        runs, plan = self.runs(out), self.plan()
        for r in runs:
            if step is not None:
                found = _eval_at_step(r.dir / "eval.jsonl", step)
                if found is not None:
                    records.append({"cell": r.cell, "seed": r.seed, "result": found})
            elif r.finished:
                result = json.loads((r.dir / RESULT_FILE).read_text())
                records.append({"cell": r.cell, "seed": r.seed, "result": result})
                want = _steps_apart(job_settings(r, self.base, self.spec.eval))
                if want is not None and result.get("step", want[1]) != want[1]:
                    other_steps.append(f"{r.cell} seed {r.seed}: step {result.get('step')}, "
                                       f"not {want[1]}")
            elif (r.dir / ERROR_FILE).is_file():
                records.append({"cell": r.cell, "seed": r.seed,
                                "error": (r.dir / ERROR_FILE).read_text().strip()})
        name = self.spec.name if step is None else f"{self.spec.name} (at step {step})"
        shared = {c.name: f"{c.describe()} (trains nothing"
                          f"{'; evaluated at its final step only' if step is not None else ''})"
                  for c in plan if c.trained_in}
        summary = summarize(name, self.cells(), list(self.spec.seeds), self.baseline,
                            records, directions=directions, shared=shared)
        summary.stopped = list(stopped or [])
        if step is not None:  # a train_as cell has only its final evaluation: not "unfinished"
            for cell in summary.cells:
                if cell.shared:
                    cell.pending = []
        trains = [c.name for c in plan if not c.trained_in]
        evals = [{"cell": r.cell, "seed": r.seed, "records": in_training_evals(r.dir)}
                 for r in runs if r.cell in trains]
        summary.curves = curves(trains, list(self.spec.seeds), evals, list(directions))
        per_run = run_curves(evals, list(directions))
        st = self.spec.stats
        summary.convergence = trends(per_run, self.baseline, directions, alpha=st.alpha,
                                     up_to=step)  # with --step N: converged by step N?
        last_k = st.last_k if step is None else 0
        summary.protocol = {
            "primary": [k for k in st.primary], "test": st.test, "alpha": st.alpha,
            "test_name": {"t": "paired t", "wilcoxon": "Wilcoxon signed-rank",
                          "permutation": "sign-flip permutation"}[st.test],
            "score": last_k_label(last_k) if last_k else FINAL, "last_k": last_k,
            "correction": "Holm, within the primary family (primary keys x cells) and within "
                          "the secondary family (other keys x cells)",
            "seeds": list(self.spec.seeds)}
        summary.verdicts = verdicts(final_scores(summary), cells=[c for c, _ in self.cells()],
                                    baseline=self.baseline, primary=st.primary,
                                    directions=directions, test=st.test, alpha=st.alpha,
                                    last_k=last_k, curves=per_run)
        missing = [k for k in st.primary if k not in summary.keys]
        if missing and records:
            summary.notes.append(f"the primary key(s) {', '.join(missing)} are not among the "
                                 f"scores ({', '.join(summary.keys)}): add the metric that "
                                 "gives them to [eval] metrics")
        if not st.primary:
            summary.notes.append("no primary key declared ([stats] primary): every key is "
                                 "secondary, Holm-corrected over all keys x cells")
        if other_steps:
            summary.notes.append(
                f"{len(other_steps)} result(s) come from another training step than the "
                f"train.steps this sweep gives ({'; '.join(other_steps[:4])}"
                f"{'; ...' if len(other_steps) > 4 else ''}): give the --set train.steps=N they "
                "were run with, or compare every run at one step with --summary --step N")
        write_all(summary, out, "summary" if step is None else f"summary_step{step}")
        return summary


def in_training_evals(run_dir: str | Path) -> list[dict[str, Any]]:
    """The evaluations ``train.eval_every`` wrote into a run's ``eval.jsonl`` (rows without a
    ``source`` are older rows of the same kind), not those of ``gantk eval`` or of a sweep."""

    return [rec for rec in read_jsonl(Path(run_dir) / "eval.jsonl")
            if rec.get("source", "eval_every") == "eval_every"]


def _eval_at_step(path: Path, step: int) -> dict[str, Any] | None:
    """The last evaluation recorded at ``step`` in a run's ``eval.jsonl`` (None: none yet); a
    line torn by a kill is skipped, as everywhere logs are read."""

    found = [rec for rec in read_jsonl(path) if rec.get("step") == step]
    return found[-1] if found else None


def _steps_apart(settings: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
    """A run's job settings with ``train.steps`` taken out, and that step count (from the base
    stack and the overrides, as the run's stack resolves it); None when they do not resolve."""

    from .spec import TrainSpec, apply_overrides

    try:
        raw = apply_overrides(settings["base"], [o for o in settings["overrides"]
                                                 if not o.startswith("seed=")])
        train = raw.get("train") or {}
        steps = int(train.get("steps", TrainSpec.model_fields["steps"].default))
        raw["train"] = {k: v for k, v in train.items() if k != "steps"}
    except (GantkError, KeyError, TypeError, ValueError, AttributeError):
        return None
    rest = {k: v for k, v in settings.items() if k not in ("base", "overrides")}
    return {**rest, "stack": raw, "seed": [o for o in settings["overrides"]
                                           if o.startswith("seed=")]}, steps


def check_same_settings(runs: list[Run], base: dict[str, Any], ev: EvalSpec
                        ) -> list[tuple[Run, int, int]]:
    """Refuse, before anything runs, to reuse run directories made with other settings: a
    finished run would otherwise be skipped and its old scores summarised under the new ones.

    The one change allowed is a larger ``train.steps``: such a run is *extended* (it resumes
    from its last checkpoint and is evaluated again at the new final step; a ``train_as`` run
    is evaluated again on its source's). Returns those runs as ``(run, old steps, new
    steps)``; a smaller ``train.steps`` for a finished run is refused."""

    changed, extended, shortened = [], [], []
    for r in runs:
        path = r.dir / JOB_FILE
        if not path.is_file():
            continue
        now = job_settings(r, base, ev)
        try:
            old = json.loads(path.read_text())
            same = {key: old.get(key) for key in now} == now
        except (OSError, ValueError, AttributeError):
            old, same = None, False
        if same:
            continue
        was = _steps_apart({key: old.get(key) for key in now}) if isinstance(old, dict) else None
        new = _steps_apart(now)
        if was is None or new is None or was[0] != new[0]:
            changed.append(r)
        elif new[1] > was[1]:
            extended.append((r, was[1], new[1]))
        elif new[1] < was[1] and r.finished:
            shortened.append((r, was[1], new[1]))
        # else the same stack written another way (train.steps in the file, not in --set)
    if changed:
        names = ", ".join(str(r.dir) for r in changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise SweepError(
            f"{len(changed)} run director{'y' if len(changed) == 1 else 'ies'} under this --out "
            f"{'was' if len(changed) == 1 else 'were'} made with other settings (base stack, "
            f"cell or --set overrides, or [eval]) than this sweep now gives: {names}",
            where=str(changed[0].dir / JOB_FILE),
            fix="use a new --out for changed settings (finished runs would otherwise be reused "
                "under the new ones), or delete those run directories to rerun them; only a "
                "larger train.steps may change (it extends the runs); nothing has been run.")
    if shortened:
        r, was, new = shortened[0]
        raise SweepError(
            f"{len(shortened)} finished run(s) under this --out trained {was} steps, more than "
            f"the train.steps={new} this sweep now gives (first: {r.dir})", where=str(r.dir / JOB_FILE),
            fix=f"compare the runs at an earlier step with --summary --step {new} (from the "
                "evaluations train.eval_every wrote), or use a new --out; a sweep extends runs, "
                "it does not shorten them. Nothing has been run.")
    return extended


def extend(extended: list[tuple[Run, int, int]]) -> None:
    """Mark extended runs unfinished: each finished run's result moves to
    ``sweep_result_stepN.json`` (N: the steps it was trained to). Its evaluation also stays in
    ``eval.jsonl``, so ``--summary --step N`` still shows the old comparison."""

    for r, was, _ in extended:
        result = r.dir / RESULT_FILE
        if result.is_file():
            result.replace(r.dir / f"sweep_result_step{was}.json")


def job_settings(run: Run, base: dict[str, Any], ev: EvalSpec) -> dict[str, Any]:
    """The settings in a run's job file that decide its result (its cell and seed name its
    directory; a different thread count is not a different experiment)."""

    settings = {"base": base, "overrides": run.overrides, "eval": ev.model_dump(by_alias=True)}
    if run.source is not None:  # trains nothing: evaluates the source run's networks
        settings["eval"]["with"] = [*settings["eval"]["with"], *run.with_]
        settings["train_run"] = f"{run.source.parent.name}/{run.source.name}"
    return settings


def write_job(run: Run, base: dict[str, Any], ev: EvalSpec, threads: int) -> Path:
    """The worker's instructions, ``RUN_DIR/sweep_job.json`` (the stack as data, never code)."""

    run.dir.mkdir(parents=True, exist_ok=True)
    (run.dir / ERROR_FILE).unlink(missing_ok=True)
    job = {**job_settings(run, base, ev), "threads": threads, "cell": run.cell, "seed": run.seed}
    path = run.dir / JOB_FILE
    path.write_text(json.dumps(job, indent=2))
    return path


def read_job(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``sweep_job.json`` as a dict; ``{}`` when there is none or it is unreadable."""

    try:
        job = json.loads((Path(run_dir) / JOB_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return job if isinstance(job, dict) else {}


def train_run_dir(run_dir: str | Path, train_run: str) -> Path:
    """The run directory a ``train_as`` run's ``train_run`` names: ``CELL/seed_S`` under the sweep
    directory and nowhere else (the job file is data; it cannot point outside it)."""

    run_dir = Path(run_dir)
    parts = Path(train_run).parts
    if len(parts) != 2 or any(p in ("", ".", "..") for p in parts):
        raise SweepError(f"train_run {train_run!r} is not CELL/seed_S", where=str(run_dir / JOB_FILE),
                         fix="run the sweep command again, which rewrites the job file.")
    return run_dir.parent.parent / train_run


def load_train_run(run_dir: str | Path, train_run: str, *, device: str | None = None) -> Any:
    """The finished run whose networks a ``train_as`` cell's run evaluates (:func:`train_run_dir`)."""

    from .errors import CheckpointError
    from .pipeline import Pipeline

    run_dir = Path(run_dir)
    source = train_run_dir(run_dir, train_run)
    if not (source / RESULT_FILE).is_file():
        raise SweepError(f"the run this cell shares its training with, {source}, has not finished "
                         "(it failed or was stopped: see its sweep_error.txt and sweep.log)",
                         where=str(run_dir), fix="fix that run and run the sweep again; this "
                                                 "one is evaluated once it has finished.")
    try:
        return Pipeline.load(source, device=device)
    except CheckpointError as exc:
        raise SweepError(f"the run this cell shares its training with, {source}, has no "
                         f"checkpoint to evaluate: {exc.paragraph()}", where=str(run_dir),
                         fix="delete that run directory and run the sweep again (it is trained "
                             "anew, then this cell evaluated).") from None


def load_run(run_dir: str | Path, *, device: str | None = None) -> tuple[Any, list[Any]]:
    """``(pipeline, with_)``: the networks a sweep run was scored on and the transforms its
    evaluation added at sampling, so that ``pipeline.sample(n, with_=with_)`` draws what the
    sweep scored. A ``train_as`` cell's run holds no networks of its own: its pipeline is the run
    it shares training with."""

    from .pipeline import Pipeline

    job = read_job(run_dir)
    with_ = list((job.get("eval") or {}).get("with") or [])
    if isinstance(job.get("train_run"), str):
        return load_train_run(run_dir, job["train_run"], device=device), with_
    return Pipeline.load(run_dir, device=device), with_


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
