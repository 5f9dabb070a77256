"""Run directories on disk, read: their checkpoints (``RUN_DIR/checkpoints/step_*.safetensors``,
the newest intact one first), their stored stack (``spec.json``) and its TOML form.

The layout of a run directory and the resume rules are with the writing side,
:mod:`gantk.facade.writer`; training into a directory that already holds checkpoints resumes
from the newest intact one.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..base.errors import CheckpointError, GantkError
from ..base.safeio import is_dir, is_regular, read_text, trim
from .checkpoint import Checkpoint
from .jobfiles import JOB_FILE, SWEEP_LOCK, read_job, train_run_dir
from .runmark import RUN_MARKER
from .stackkeys import same_stack, shell, spec_diff, stack_diff

__all__ = ["list_checkpoints", "open_checkpoint", "same_stack", "spec_diff", "spec_to_toml",
           "stack_diff", "step_of", "stored_stack"]

_CKPT = re.compile(r"step_(\d+)\.safetensors$")


def list_checkpoints(run_dir: Path, odd: list[str] | None = None) -> list[tuple[int, Path]]:
    """``(step, path)`` of every regular ``step_*.safetensors`` file, oldest first (pipes,
    devices, folders and a ``checkpoints/`` symlink loop are passed over, never opened; their
    names go to ``odd``)."""
    folder = run_dir / "checkpoints"
    found = []
    try:
        names = sorted(os.listdir(folder)) if is_dir(folder) else []
    except OSError:
        names = []
    for name in names:
        m = _CKPT.fullmatch(name)
        if m and is_regular(folder / name):
            found.append((int(m.group(1)), folder / name))
        elif m and odd is not None:
            odd.append(f"{name} (not a regular file)")
    return sorted(found)


def stored_stack(run_dir: Path, warn=None) -> dict[str, Any] | None:
    """The run's spec.json if it is intact (it is rewritten from the checkpoint on every start,
    so a damaged one only costs a warning)."""
    f = run_dir / "spec.json"
    if not f.exists() and not f.is_symlink():
        return None
    try:
        d = json.loads(read_text(f, what="spec.json"))
    except (GantkError, ValueError, RecursionError) as exc:
        d, why = None, getattr(exc, "message", type(exc).__name__)
    else:
        why = "not a JSON object"
    if not isinstance(d, dict):
        if warn is not None:
            warn(f"{f} is damaged ({why}); it is rewritten from the checkpoint")
        return None
    return d


def _train_as_source(path: Path) -> Path | None:
    """The run a sweep's ``train_as`` run directory evaluates (its job file's ``train_run``)."""
    train_run = read_job(path).get("train_run")
    try:
        return train_run_dir(path, train_run) if isinstance(train_run, str) else None
    except GantkError:
        return None


def open_checkpoint(path: Path, *, step: int | None = None, warn=None,
                    accept: Callable[[Checkpoint], None] | None = None) -> Checkpoint:
    """A checkpoint: ``path`` itself, or the newest intact one in run directory ``path``.

    In a run directory a checkpoint that is unreadable, damaged, of another stack than the run's
    spec.json, or refused by ``accept`` (which raises CheckpointError) is skipped with a
    warning, and the next older one is tried."""
    if not is_dir(path):
        if path.exists() or path.is_symlink():
            _refuse_text_file(path)
            ckpt = Checkpoint(path)
            if accept is not None:
                accept(ckpt)
            return ckpt
        raise CheckpointError("no such file or run directory", where=str(path),
                              fix="give a run directory written by `gantk train` or a .safetensors file.")
    errors: list[str] = []
    found = list_checkpoints(path, errors)
    if step is not None:
        found = [(s, f) for s, f in found if s == step]
        if not found:
            raise CheckpointError(f"no checkpoint for step {step} (have "
                                  f"{trim([s for s, _ in list_checkpoints(path)], 200)})",
                                  where=str(path), fix="pick one of the steps listed.")
    if not found:
        source = _train_as_source(path)
        if source is None and stored_stack(path) is None:
            _refuse_parent(path)
        raise CheckpointError("the run directory holds no checkpoint", where=str(path / "checkpoints"),
                              fix=f"this run of a sweep's train_as cell trained nothing and holds "
                                  f"only its evaluation: its networks are in {source} (sample them "
                                  f"with the cell's transforms: `{shell('gantk', 'eval', source)} "
                                  "--with NAME`, "
                                  f"or gantk.sweeps.load_run)." if source else
                              "train first (`gantk train STACK.toml --out RUN_DIR`).")
    reference = stored_stack(path, warn)
    foreign: list[tuple[Path, list[str]]] = []  # intact, but not the stack of spec.json
    for _, f in reversed(found):  # newest intact one wins
        try:
            ckpt = Checkpoint(f)
            diff = stack_diff(ckpt.spec, reference) if reference is not None else []
            if diff:
                foreign.append((f, diff))
                continue
            if accept is not None:
                accept(ckpt)
        except CheckpointError as exc:
            errors.append(f"{f.name} ({exc.message})")
            continue
        if foreign:
            errors += [f"{g.name} (it holds a different stack than the run's spec.json: "
                       f"{trim('; '.join(d[:2]), 200)})" for g, d in foreign]
        if errors and warn is not None:
            warn(f"skipped damaged or foreign checkpoint(s): {trim('; '.join(errors), 600)}; "
                 f"using {f.name}")
        return ckpt
    if foreign:  # every intact checkpoint disagrees with spec.json: spec.json is the odd one
        return _trust_checkpoints(path, foreign, errors, warn, accept)
    raise CheckpointError("no checkpoint in the run directory is usable: "
                          + trim("; ".join(errors), 600), where=str(path / "checkpoints"),
                          fix="restore a checkpoint from a backup or start a new run directory.")


def _trust_checkpoints(path: Path, foreign: list[tuple[Path, list[str]]], errors: list[str],
                       warn, accept) -> Checkpoint:
    """spec.json was edited (or damaged into another valid stack) after the checkpoints were
    written: each checkpoint holds the stack it was trained with, so the newest intact one is
    used as it is, with a warning naming the keys that differ."""
    for f, diff in foreign:
        try:
            ckpt = Checkpoint(f)
            if accept is not None:
                accept(ckpt)
        except CheckpointError as exc:
            errors.append(f"{f.name} ({exc.message})")
            continue
        if warn is not None:
            listed = "; ".join(diff[:4]) + (f" and {len(diff) - 4} more" if len(diff) > 4 else "")
            warn(f"{path / 'spec.json'} differs from every checkpoint of the run in "
                 f"{trim(listed, 400)}; each checkpoint holds the stack it was trained with, so "
                 f"{f.name}'s stack is used (`gantk train` with the run's stack rewrites "
                 "spec.json from it)")
        return ckpt
    raise CheckpointError("no checkpoint in the run directory is usable: "
                          + trim("; ".join(errors), 600), where=str(path / "checkpoints"),
                          fix="restore a checkpoint from a backup or start a new run directory.")


def runs_under(folder: Path, *, depth: int = 3, limit: int = 2000) -> list[Path]:
    """The run directories below ``folder`` (a run marker, ``spec.json``, ``checkpoints/`` or
    sweep job file in them), at most ``depth`` levels down, sorted; symlinks are not followed."""
    found: list[Path] = []
    seen = 0
    for top, dirs, files in os.walk(folder):
        seen += 1
        here = Path(top)
        level = len(here.relative_to(folder).parts)
        if here != folder and ("spec.json" in files or JOB_FILE in files or "checkpoints" in dirs
                               or RUN_MARKER in files):
            found.append(here)
            dirs[:] = []  # a run's own folders hold no runs
        elif level >= depth or seen > limit:
            dirs[:] = []
        dirs.sort()
    return sorted(found)


def _refuse_parent(path: Path) -> None:
    """A folder that is no run but holds runs (``runs/``, a sweep's ``--out``): say so."""
    runs = runs_under(path)
    if not runs:
        return
    names = [str(r.relative_to(path)) for r in runs]
    listed = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    sweep = (path / SWEEP_LOCK).exists() or any((r / JOB_FILE).exists() for r in runs)
    what = "a sweep directory" if sweep else "a folder of run directories"
    raise CheckpointError(
        f"this is {what}, not a run: it holds {len(runs)} run(s): {listed}", where=str(path),
        fix=f"give one run, e.g. `{shell('gantk', 'eval', path / names[0])}`" +
            ("; the sweep's table of every run is `gantk sweep SWEEP.toml --out "
             f"{shell(path)} --summary`." if sweep else "."))


def _refuse_text_file(path: Path) -> None:
    """A stack or sweep file handed where a checkpoint belongs: say what it is."""
    if path.suffix.lower() != ".toml" or not is_regular(path):
        return
    try:
        import tomllib

        raw = tomllib.loads(read_text(path, what=path.name))
    except (GantkError, ValueError):
        raw = {}
    if "axes" in raw or "seeds" in raw or "eval" in raw and "stack" in raw:
        raise CheckpointError(
            "this is a sweep file, not a checkpoint or run directory", where=str(path),
            fix=f"run it first: `{shell('gantk', 'sweep', path)} --out runs/NAME`; then evaluate a run "
                "under runs/NAME, or read runs/NAME/summary.md.")
    raise CheckpointError(
        "this is a stack file (TOML), not a checkpoint or run directory", where=str(path),
        fix=f"train it first: `{shell('gantk', 'train', path)} --out runs/NAME`, then give that run "
            "directory (`gantk eval runs/NAME`).")


def _strip_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_strip_none(v) for v in obj]
    return obj


def spec_to_toml(spec_dict: dict[str, Any]) -> str:
    """A stored spec (``StackSpec.to_dict()``) as the TOML of ``RUN_DIR/spec.toml``: what a user
    reads and can train again (unset options left out, as TOML has no null)."""
    import tomli_w

    return tomli_w.dumps(_strip_none(spec_dict))


def step_of(row: dict[str, Any]) -> float:
    step = row.get("step", 0)
    return step if isinstance(step, (int, float)) and not isinstance(step, bool) else math.inf
