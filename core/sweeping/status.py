"""``gantk sweep FILE --out DIR --status``: where every run of a sweep stands, read from disk
(and, for a scheduler's launcher, from its job records), without starting or changing anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..store.jobfiles import ERROR_FILE, RESULT_FILE
from .runfiles import lock_holder, open_regular, read_json_file, read_small_text

#: the states a run can be in, in the order the counts are printed
STATES = ("finished", "running", "submitted", "failed", "stopped", "not started")


def last_step(run_dir: Path) -> int | None:
    """The step of the last whole row of a run's ``metrics.jsonl`` (its tail read only)."""

    path = run_dir / "metrics.jsonl"
    if not os.path.lexists(path):
        return None
    try:
        fd = open_regular(path, os.O_RDONLY)
    except Exception:  # a planted file: no progress to show
        return None
    with os.fdopen(fd, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - 8192))
        lines = fh.read().split(b"\n")
    for line in reversed(lines):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            return row["step"]
    return None


def run_status(runs: list[Any], launcher: Any = None) -> list[dict[str, Any]]:
    """One row per run: ``cell``, ``seed``, ``dir``, ``state`` (one of STATES), ``step`` (its
    training progress) and ``detail`` (the error, the process, the job)."""

    def describe(run: Any) -> str | None:
        try:
            return launcher.describe(run) if hasattr(launcher, "describe") else None
        except Exception as exc:  # a scheduler that cannot be asked (sacct down): say so
            return f"job state unknown ({type(exc).__name__}: {exc})"

    rows = []
    for r in runs:
        result, damaged = read_json_file(r.dir / RESULT_FILE)
        step = last_step(r.dir)
        detail = ""
        if result is not None:
            state, step = "finished", result.get("step", step)
        elif (pid := lock_holder(r.dir)) is not None:
            state, detail = "running", f"pid {pid}"
        elif (job := describe(r)) is not None and \
                not any(word in job for word in (" FINISHED", " COMPLETED", " CANCELLED",
                                                 " FAILED", " TIMEOUT", " NODE_FAIL")):
            state, detail = "submitted", job
        elif (error := read_small_text(r.dir / ERROR_FILE)) is not None:
            state, detail = "failed", error.splitlines()[0] if error else ""
        elif step is not None or damaged is not None:
            state = "stopped"
            detail = (f"damaged {RESULT_FILE}: {damaged}; " if damaged else "") + \
                "the same sweep command resumes it"
            if job:
                detail += f" ({job})"
        else:
            state = "not started"
        rows.append({"cell": r.cell, "seed": r.seed, "dir": str(r.dir), "state": state,
                     "step": step, "detail": detail})
    return rows
