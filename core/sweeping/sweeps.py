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
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..base.errors import SweepError, suggest
from ..store.jobfiles import (ERROR_FILE, JOB_FILE, LOG_FILE, RESULT_FILE, SWEEP_LOCK, read_job,
                              train_run_dir, worker_command)
from ..store.runmark import claim_dir
from .jobs import (_eval_at_step, _steps_apart, check_same_settings, extend, in_training_evals,
                   job_settings, load_run, load_train_run, write_job)
from ..metrics.scores import directions as metric_directions
from .report import write_all
from .summary import Summary, curve_points, final_scores, run_curves, summarize
from .runfiles import check_run_files, held_lock, made_by_a_sweep, read_json_file, read_small_text
from .sweepfile import (Cell, EvalSpec, Run, StatsSpec, SweepSpec, _axis_values, check_folders,
                        slug)
from .verdicts import FINAL, last_k_label, trends, verdicts

# What ``gantk.sweeps`` (this module's old name) offered, kept importable from here.
__all__ = [
    "Cell", "ERROR_FILE", "EvalSpec", "JOB_FILE", "LOG_FILE", "RESULT_FILE", "Run", "SWEEP_LOCK",
    "StatsSpec", "Sweep", "SweepError", "SweepSpec", "check_same_settings", "extend",
    "in_training_evals", "job_settings", "load_run", "load_train_run", "read_job", "slug", "sweep",
    "train_run_dir", "worker_command", "write_job",
]


@dataclass
class Sweep:
    """A parsed, expanded sweep; :meth:`validate` checks it, :meth:`run` runs it."""

    spec: SweepSpec
    root: Path = Path(".")
    base: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path) -> Sweep:
        from ..stack.spec import load_toml

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
        from ..stack.spec import load_toml

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
        check_folders(names)
        if spec.baseline is not None and spec.baseline not in names:
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
        parts = self.cell_parts()
        cells = list(parts)

        def matches(cell: str, item: str) -> bool:
            if item.strip() == cell:  # a cell's own name, commas in its values and all
                return True
            want = self._wanted(item, {p.split("=", 1)[-1] for ps in parts.values() for p in ps})
            return bool(want) and all(w in parts[cell] if "=" in w else
                                      any(p.split("=", 1)[-1] == w for p in parts[cell])
                                      for w in want)

        chosen = set()
        for item in only:
            hit = {c for c in cells if matches(c, item)}
            if not hit:
                values = sorted({p for ps in parts.values() for p in ps})
                hint = suggest(item, values + [v.split("=", 1)[-1] for v in values])
                raise SweepError(f"{item!r} matches no cell" + (f"; {hint}" if hint else ""),
                                 where="--only", fix=f"name a cell or an axis value: "
                                                     f"{', '.join(values)}.")
            chosen |= hit
        picked = [r for r in runs if r.cell in chosen]
        sources = {r.source for r in picked if r.source is not None}
        return [r for r in runs if r.cell in chosen or r.dir in sources]

    def set_eval(self, items: list[str]) -> None:
        """Apply ``eval.KEY=VALUE`` overrides (``gantk sweep --set eval.n=500``) to ``[eval]``."""

        from ..stack.spec import parse_value

        raw = self.spec.eval.model_dump(by_alias=True)
        for item in items:
            key, _, value = item.partition("=")
            raw[key.strip().removeprefix("eval.")] = parse_value(value.strip())
        try:
            self.spec.eval = EvalSpec.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"eval.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors())
            raise SweepError(problems, where="--set", fix="give one of [eval]'s keys a valid "
                             "value, e.g. --set eval.n=500 (docs/sweeps.md).") from None

    def cell_parts(self) -> dict[str, list[str]]:
        """Each cell's name -> its ``axis=value`` parts, one per axis (a value may hold commas:
        the cell ``lambda=0,0`` of the axis ``lambda`` is one part, not two)."""

        axes = [_axis_values(n, v) for n, v in self.spec.axes.items()]
        if not axes:
            return {"base": []}
        return {",".join(v.name for v in combo): [v.name for v in combo]
                for combo in itertools.product(*axes)}

    def _wanted(self, item: str, labels: set[str]) -> list[str]:
        """An ``--only`` item as its ``axis=value`` pairs and bare values: split at the commas
        that start another axis (``lambda=0,0,method=x`` is two pairs); a bare piece that is no
        value's whole name is split at every comma (``vanilla,msgan``)."""

        names = "|".join(re.escape(n) for n in sorted(self.spec.axes, key=len, reverse=True))
        pieces = re.split(rf",\s*(?=(?:{names})=)", item) if names else [item]
        out = []
        for piece in (p.strip() for p in pieces):
            head = piece.split("=", 1)[0]
            if "=" in piece and head in self.spec.axes or piece in labels:
                out.append(piece)
            else:
                out += [w.strip() for w in piece.split(",") if w.strip()]
        return out

    # ------------------------------------------------------------------ validation
    def validate(self, *, manager: Any = None) -> None:
        """Build every cell's stack (as `gantk check` does; once per distinct structure, none
        kept in memory) and resolve the metrics, so a typo stops the sweep before anything runs."""

        from ..stack.plugins import get_plugin_manager
        from .checks import validate_sweep

        validate_sweep(self, manager or get_plugin_manager())

    def set_launcher(self, name: str) -> None:
        """``--launcher NAME``: another launcher than the file's (its [launcher] settings are
        dropped when the name differs)."""

        same = name == self.spec.launcher_name
        self.spec.launcher = {**self.spec.launcher_options, "name": name} if same else name

    def set_seeds(self, seeds: list[int], *, where: str = "--seeds") -> None:
        """Replace the file's seeds (``--seeds``), checked as the file's are (range, no
        duplicates, at most MAX_SEEDS)."""

        try:
            self.spec = SweepSpec.model_validate({**self.spec.model_dump(by_alias=True),
                                                  "seeds": seeds})
        except ValidationError as exc:
            raise SweepError("; ".join(e["msg"].removeprefix("Value error, ")
                                       for e in exc.errors()), where=where,
                             fix="give distinct seeds between 0 and 2**63 - 1, e.g. 0-9.") from None

    # ------------------------------------------------------------------ running
    def run(self, out: str | Path, *, jobs: int | None = None, launcher: Any = None,
            on_event: Callable[[str], None] | None = None, validate: bool = True,
            manager: Any = None, only: list[str] | None = None, submit: bool = False,
            launcher_options: dict[str, Any] | None = None) -> Summary:
        """Run what is not finished, evaluate, write the summary files; returns the table.

        ``only`` runs just the cells that match (see :meth:`select`); the summary covers all.
        ``submit`` hands the runs to a launcher whose jobs outlive this call (a scheduler's,
        ``launcher.detached``) and returns once they are submitted (``summary.submitted``).
        ``launcher_options`` update the file's ``[launcher]`` settings."""

        from ..stack.plugins import get_plugin_manager
        from .launch import find_launcher, run_all

        out = Path(out)
        manager = manager or get_plugin_manager()
        if validate:
            self.validate(manager=manager)
        jobs = jobs or self.spec.jobs or 1
        threads = self.spec.threads or max(1, (os.cpu_count() or 1) // jobs)
        options = {**self.spec.launcher_options, **(launcher_options or {})}
        launcher = launcher or find_launcher(self.spec.launcher_name, jobs, manager, options, out)
        if submit and not getattr(launcher, "detached", False):
            raise SweepError(f"the launcher {self.spec.launcher_name!r} runs the jobs as children "
                             "of this process: they cannot be submitted and left",
                             where="--submit", fix='use a scheduler\'s launcher (launcher = '
                                                   '"submitit", docs/sweeps.md), or leave out '
                                                   '--submit.')
        claim_dir(out, kind="sweep", recognise=made_by_a_sweep)  # never a folder gantk did not make
        runs = self.select(self.runs(out), only)
        with held_lock(out, SWEEP_LOCK, doing="is running a sweep into this directory",
                       fix="wait for it to finish, or stop it (Ctrl-C, or kill -INT with that "
                           "pid) and run this command again: it resumes every run; to run "
                           "another sweep at the same time give it its own --out."):
            check_run_files(runs)
            extend(check_same_settings(runs, self.base, self.spec.eval))
            counts = run_all(runs, launcher, on_event=on_event or (lambda text: None),
                             prepare=lambda r: write_job(r, self.base, self.spec.eval, threads),
                             submit_only=submit)
        summary = self.summarize(out, manager=manager,
                                 stopped=[f"{r.cell} seed {r.seed}" for r in counts["stopped"]])
        summary.submitted = [f"{r.cell} seed {r.seed}" for r in counts["submitted"]]
        summary.waiting = [f"{r.cell} seed {r.seed}" for r in counts["waiting"]]
        return summary

    def summarize(self, out: str | Path, *, manager: Any = None, step: int | None = None,
                  stopped: list[str] | None = None) -> Summary:
        """The table from what is on disk under ``out`` (also after a partial run).

        With ``step``, the table compares the runs at that training step instead, from the
        evaluations ``train.eval_every`` appended to each run's ``eval.jsonl`` (unfinished runs
        count once they passed the step), and is written as ``summary_stepN.*``."""

        from ..stack.plugins import get_plugin_manager

        out = Path(out)
        manager = manager or get_plugin_manager()
        directions = {k: d for k, (_, d) in metric_directions(manager.registry).items() if d}
        records, other_steps, damaged = [], [], []
        runs, plan = self.runs(out), self.plan()
        for r in runs:
            if step is not None:
                found = _eval_at_step(r.dir / "eval.jsonl", step)
                if found is not None:
                    records.append({"cell": r.cell, "seed": r.seed, "result": found})
            elif (got := read_json_file(r.dir / RESULT_FILE))[0] is not None:
                result = got[0]
                records.append({"cell": r.cell, "seed": r.seed, "result": result})
                want = _steps_apart(job_settings(r, self.base, self.spec.eval))
                if want is not None and result.get("step", want[1]) != want[1]:
                    other_steps.append(f"{r.cell} seed {r.seed}: step {result.get('step')}, "
                                       f"not {want[1]}")
            elif got[1] is not None:  # torn by a kill or a full disk
                damaged.append(f"{r.dir / RESULT_FILE} ({r.cell} seed {r.seed}): {got[1]}")
            elif (error := read_small_text(r.dir / ERROR_FILE)) is not None:
                records.append({"cell": r.cell, "seed": r.seed, "error": error})
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
        per_run = run_curves(evals, list(directions))
        summary.curves = curve_points(per_run, trains, list(self.spec.seeds))
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
        if damaged:
            summary.notes.append(
                f"{len(damaged)} run(s) have a damaged sweep_result.json, left out of the table "
                f"and counted unfinished ({'; '.join(damaged[:3])}"
                f"{'; ...' if len(damaged) > 3 else ''}): the next `gantk sweep` with the same "
                "command evaluates them again (their training is kept)")
        if other_steps:
            summary.notes.append(
                f"{len(other_steps)} result(s) come from another training step than the "
                f"train.steps this sweep gives ({'; '.join(other_steps[:4])}"
                f"{'; ...' if len(other_steps) > 4 else ''}): give the --set train.steps=N they "
                "were run with, or compare every run at one step with --summary --step N")
        write_all(summary, out, "summary" if step is None else f"summary_step{step}")
        return summary


def sweep(source: str | Path | dict[str, Any], out: str | Path, *, jobs: int | None = None,
          root: str | Path = ".", **kwargs: Any) -> Summary:
    """Run a sweep file (or dict) into ``out``; returns the summary table (see :class:`Sweep`)."""

    sw = Sweep.from_dict(source, root=root) if isinstance(source, dict) else Sweep.from_file(source)
    return sw.run(out, jobs=jobs, **kwargs)
