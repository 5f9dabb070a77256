"""Finding a sweep's worker processes from a test (Linux /proc)."""

from __future__ import annotations

from pathlib import Path

import pytest


def worker_pid(run: Path) -> int:
    """The pid of the worker process of ``run`` (``python -m gantk.sweep_worker RUN``); the test
    fails when there is none."""
    want = f"sweep_worker\0{run}".encode()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and want in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except OSError:
            continue
    pytest.fail(f"no worker process for {run}")
