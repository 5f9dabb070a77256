"""The files a sweep leaves in each run directory, and how to read them.

A run of a sweep is an ordinary run directory plus a few files of its own::

    RUN_DIR/sweep_job.json      the worker's instructions (JOB_FILE; the stack as data, never code)
    RUN_DIR/sweep_result.json   the sweep's evaluation, written last: the only "finished" mark
    RUN_DIR/sweep_error.txt     one paragraph when the run failed
    RUN_DIR/sweep.log           the worker's output

This module sits below both run directories and sweeps, so that a run directory can follow a
``train_as`` run to the run it evaluates (``gantk eval``'s hint) without knowing about sweeps, and
the launcher and the worker share the names without importing the sweep itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..base.errors import GantkError, SweepError
from ..base.safeio import is_regular, read_text

RESULT_FILE = "sweep_result.json"
ERROR_FILE = "sweep_error.txt"
SWEEP_LOCK = ".sweep.lock"  # held by the `gantk sweep` process running into OUT
JOB_FILE = "sweep_job.json"
LOG_FILE = "sweep.log"
# The worker module by its old name (the alias table in gantk/__init__.py maps it to
# gantk.sweeping.worker): `pgrep -f sweep_worker` (docs/sweeps.md) finds a sweep's processes.
WORKER_MODULE = "gantk.sweep_worker"


def read_job(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``sweep_job.json`` as a dict; ``{}`` when there is none or it is unreadable."""

    f = Path(run_dir) / JOB_FILE
    if not is_regular(f):  # a FIFO named like the job file must not hang the reader
        return {}
    try:
        job = json.loads(read_text(f, what="job file"))
    except (OSError, ValueError, RecursionError, GantkError):
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


def worker_command(run_dir: Path) -> list[str]:
    """The command line that runs one job (what a cluster launcher submits)."""

    return [sys.executable, "-m", WORKER_MODULE, str(run_dir)]
