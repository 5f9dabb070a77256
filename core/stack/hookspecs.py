"""The pluggy hook specifications of gantk, grouped by phase.

A plugin is any module or object with functions decorated by :data:`gantk.hookimpl` whose names
match these specs. Implementations may take fewer arguments than the spec lists, so hooks can grow.
Third-party plugins are found through the ``gantk`` entry-point group; first-party plugins use the
same group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from .registry import Registrar

hookspec = pluggy.HookspecMarker("gantk")
hookimpl = pluggy.HookimplMarker("gantk")

# ---------------------------------------------------------------------------- registration


@hookspec
def gantk_register(register: Registrar) -> None:
    """Add named components with ``register.backbone(...)``, ``register.loss(...)``,
    ``register.latent_transform(...)``, ``register.regularizer(...)``, ``register.method(...)``,
    ``register.dataset(...)``, ``register.metric(...)`` and ``register.alias(...)``.

    Called once per plugin, with a ``register`` bound to that plugin, so the registry knows which
    distribution contributed each name. Return nothing."""


@hookspec
def gantk_registry_files() -> list[str]:
    """Return paths of TOML metadata files (the format of the repository's ``registry.toml``)
    describing the components this plugin registers: title, paper, needs, conflicts, cost,
    default parameters. Optional."""


# ---------------------------------------------------------------------------- events


@hookspec
def gantk_on_build(pipeline: Any) -> None:
    """Called once the pipeline has built its backbone, loss and components, before training or
    sampling. Loggers and callbacks may keep a reference to the pipeline."""


@hookspec
def gantk_on_step_end(pipeline: Any, step: int, logs: dict[str, float]) -> None:
    """Called after each training step with the step number (1-based) and the scalar logs of that
    step (present only on logging steps; an empty dict otherwise)."""


@hookspec
def gantk_on_evaluate(pipeline: Any, step: int, result: dict[str, Any]) -> None:
    """Called with each evaluation during training (``train.eval_every``): the step and the
    result row written to ``eval.jsonl`` (scores and the names of their feature spaces)."""


@hookspec
def gantk_on_train_end(pipeline: Any, run_dir: Any) -> None:
    """Called when ``Pipeline.train`` returns normally. ``run_dir`` is None for in-memory runs."""


@hookspec
def gantk_on_sample(pipeline: Any, samples: Any) -> None:
    """Called with the tensor returned by ``Pipeline.sample``; return nothing."""


# ---------------------------------------------------------------------------- sweeps


@hookspec(firstresult=True)
def gantk_sweep_launcher(name: str, jobs: int) -> Any:
    """Return a launcher for a sweep file's ``launcher = NAME`` when ``name`` is yours, else None.

    A launcher (see :mod:`gantk.sweep_launch`) has ``slots`` (runs kept going at once, e.g.
    ``jobs`` or a queue limit), ``start(run) -> handle`` (submit
    ``gantk.sweeps.worker_command(run.dir)``, e.g. to a cluster scheduler, without waiting),
    ``poll(handle) -> int | None`` (exit status once ended) and ``stop(handle)``. The run
    directory must be reachable from where the job runs (a shared file system). The local process
    pool (``launcher = "local"``) needs no plugin."""
