"""Watching child processes from a test (Linux /proc): a sweep's workers, a start-up."""

from __future__ import annotations

import time
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


def wait_for_torch_import(proc, timeout: float = 60.0) -> None:
    """Block until the child process maps libtorch (it is importing torch), so a signal sent next
    lands in gantk's start-up and not in the interpreter's own first ~0.1 s (site.py), which no
    program can guard."""
    maps, deadline = Path(f"/proc/{proc.pid}/maps"), time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if "libtorch" in maps.read_text():
                return
        except OSError:
            pass
        time.sleep(0.005)
