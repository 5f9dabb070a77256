"""Stopping a run cleanly: SIGINT (Ctrl-C) and SIGTERM during training.

Inside :func:`deferred_stop` the first SIGINT or SIGTERM only raises a flag; the training loop
(:func:`gantk.facade.loop.train_steps`) looks at it at every step boundary, saves a checkpoint and
raises :class:`Interrupted`. A second signal exits at once (``KeyboardInterrupt``); the atomic
writers guarantee that even then no file is left half-written. Outside training (start-up,
evaluation) Ctrl-C is an ordinary ``KeyboardInterrupt``, which the CLI turns into one line.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from ..base.errors import GantkError


class Interrupted(GantkError):
    """Training stopped by a signal after saving a checkpoint (exit status 130)."""

    exit_code = 130

    def __init__(self, signame: str, step: int, path: Path) -> None:
        self.step, self.path = step, path
        super().__init__(f"stopped by {signame} at step {step}; saved {path}",
                         fix="run the same command again to resume from that checkpoint.")


class StopFlag:
    """Truthy once a stop was asked for; ``name`` says which signal asked."""

    def __init__(self) -> None:
        self.name: str | None = None

    def __bool__(self) -> bool:
        return self.name is not None


@contextlib.contextmanager
def deferred_stop() -> Iterator[StopFlag]:
    """Defer SIGINT/SIGTERM to the next step boundary (main thread only; elsewhere the flag
    simply never rises)."""

    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        if flag:
            raise KeyboardInterrupt  # the second signal: exit at once
        flag.name = signal.Signals(signum).name
        sys.stderr.write(f"\n{flag.name}: saving a checkpoint at the end of this step, then "
                         "stopping (press Ctrl-C again to exit at once)\n")

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # pragma: no cover - not allowed here
            pass
    try:
        yield flag
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)
