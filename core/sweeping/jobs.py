"""A sweep's runs on disk: the job file each run's worker reads, the check that a run
directory under ``--out`` was made with the settings the sweep now gives (or only more steps,
which extends it), the in-training evaluations, and loading the networks a run was scored on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..base.errors import GantkError, SweepError
from ..base.safeio import atomic_write, ensure_dir, io_errors, read_jsonl
from ..store.jobfiles import ERROR_FILE, JOB_FILE, RESULT_FILE, read_job, train_run_dir
from .runfiles import read_json_file
from .sweepfile import EvalSpec, Run


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

    from ..stack.spec import TrainSpec, apply_overrides

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

    changed, extended, shortened, damaged = [], [], [], []
    for r in runs:
        old, why = read_json_file(r.dir / JOB_FILE)
        if why is not None:  # torn or empty (a full disk, a kill): damaged, not other settings
            if r.finished:
                damaged.append((r, why))
            continue  # an unfinished run's job file is rewritten before it starts
        if old is None:
            continue
        now = job_settings(r, base, ev)
        if {key: old.get(key) for key in now} == now:
            continue
        was = _steps_apart({key: old.get(key) for key in now})
        new = _steps_apart(now)
        if was is None or new is None or was[0] != new[0]:
            changed.append(r)
        elif new[1] > was[1]:
            extended.append((r, was[1], new[1]))
        elif new[1] < was[1] and r.finished:
            shortened.append((r, was[1], new[1]))
        # else the same stack written another way (train.steps in the file, not in --set)
    if damaged:
        r, why = damaged[0]
        raise SweepError(
            f"{len(damaged)} finished run(s) under this --out have a damaged job file, so the "
            f"settings their results were made with are unknown (first: {r.dir / JOB_FILE}: "
            f"{why}); this is damage (a kill or a full disk), not a change of settings",
            where=str(r.dir / JOB_FILE),
            fix="delete the sweep_result.json beside each damaged job file: the same command "
                "then rewrites the job file and evaluates that run again from its checkpoints "
                "(its training is kept). Nothing has been run.")
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
        if os.path.lexists(result):
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

    ensure_dir(run.dir)
    with io_errors(run.dir / ERROR_FILE, "remove the old error file"):
        (run.dir / ERROR_FILE).unlink(missing_ok=True)
    job = {**job_settings(run, base, ev), "threads": threads, "cell": run.cell, "seed": run.seed}
    return atomic_write(run.dir / JOB_FILE, json.dumps(job, indent=2))


def load_train_run(run_dir: str | Path, train_run: str, *, device: str | None = None) -> Any:
    """The finished run whose networks a ``train_as`` cell's run evaluates (:func:`train_run_dir`)."""

    from ..base.errors import CheckpointError
    from ..facade.pipeline import Pipeline

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
    evaluation added at sampling, so that ``pipeline.sample(n, with_=with_)`` draws from what
    the sweep scored (StyleGAN2's pictures use its constant noise maps, its scores random noise,
    as NVlabs' do: ``noise_mode="random"`` draws exactly as the evaluation did). A ``train_as`` cell's run holds no networks of its own: its pipeline is the run
    it shares training with."""

    from ..facade.pipeline import Pipeline

    job = read_job(run_dir)
    with_ = list((job.get("eval") or {}).get("with") or [])
    if isinstance(job.get("train_run"), str):
        return load_train_run(run_dir, job["train_run"], device=device), with_
    return Pipeline.load(run_dir, device=device), with_
