"""Checking a sweep before anything runs: every cell's stack builds, the metrics resolve.

Each cell's stack is parsed (every value validated, as ``gantk check`` does). Networks are built
once per distinct *structure*: the stack without its seed and without the ``train`` options that
only set numbers of the optimisation and the schedule (learning rates, steps, intervals), which
cannot change what is built. A built pipeline is dropped before the next is built, so a sweep of
10,000 cells that differ in a learning rate builds one and holds at most one in memory.
"""

from __future__ import annotations

import json
from typing import Any

from ..base.errors import GantkError, SpecError, SweepError, suggest
from ..metrics.scores import directions as metric_directions

#: ``train`` options that set only numbers of the optimisation or the schedule: cells that
#: differ in these alone build the same networks and components
SCHEDULE_KEYS = frozenset({
    "steps", "lr_g", "lr_d", "betas", "weight_decay", "log_every", "sample_every", "ckpt_every",
    "keep_checkpoints", "eval_every", "eval_n", "num_samples", "n_critic", "threads", "workers"})


def structure_key(spec: Any, with_: list[Any]) -> str:
    """What decides the networks and components a cell builds (see the module docstring)."""

    raw = spec.to_dict()
    raw.pop("seed", None)
    if isinstance(raw.get("train"), dict):
        raw["train"] = {k: v for k, v in raw["train"].items() if k not in SCHEDULE_KEYS}
    return json.dumps([raw, with_], sort_keys=True, default=str)


def validate_sweep(sweep: Any, manager: Any) -> None:
    """Every problem of ``sweep`` (a :class:`gantk.sweeping.sweeps.Sweep`) in one SweepError."""

    from ..facade.pipeline import Pipeline
    from ..metrics.evaluate import resolve_metric_names
    from ..stack.spec import parse_spec

    problems: list[str] = []
    built: set[str] = set()
    bad = 0
    seed = f"seed={sweep.spec.seeds[0]}"
    for cell in sweep.plan():
        try:
            spec = parse_spec(sweep.base, cell.overrides + [seed])
            key = structure_key(spec, cell.with_)
            if key in built:
                continue
            pipe = Pipeline(spec, manager=manager, device="cpu")
            if cell.with_:  # the sampling transforms must build on the trained stack
                pipe.extra_components(cell.with_)
            del pipe  # nothing of a cell stays in memory
            built.add(key)
        except GantkError as exc:
            bad += 1
            if bad <= 20:  # the message names the first 20 and counts the rest
                problems.append(f"cell {cell.name!r}: {exc.paragraph()}")
    try:
        names = resolve_metric_names(sweep.spec.eval.metrics, registry=manager.registry)
        for metric, opts in sweep.spec.eval.options.items():
            if metric not in names:
                raise SpecError(f"options for {metric!r}, which is not evaluated",
                                where=f"eval.options.{metric}", fix="add it to eval.metrics.")
            manager.registry.get(metric, "metric").make_params(opts, where=f"eval.{metric}")
    except GantkError as exc:
        problems.append(f"eval: {exc.paragraph()}")
    known = {k for k, (_, d) in metric_directions(manager.registry).items() if d}
    for key in sweep.spec.stats.primary:
        if key not in known:
            hint = suggest(key, sorted(known))
            problems.append(f"stats.primary: {key!r} is not a score any installed metric "
                            f"gives" + (f"; {hint}" if hint else "") +
                            f" (scores: {', '.join(sorted(known))})")
    if bad > 20:
        problems.append(f"and {bad - 20} more bad cell(s)")
    if problems:
        count = len(problems) + max(0, bad - 20) - (bad > 20)
        raise SweepError(f"{count} problem(s) before anything ran: " +
                         " | ".join(problems), where="sweep file",
                         fix="correct the cells named; nothing has been run.")
