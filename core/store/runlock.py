"""One training process per run directory.

``run_lock(RUN_DIR)`` holds an exclusive POSIX lock (``lockf``) on ``RUN_DIR/.lock`` while a process trains into
RUN_DIR. A second gantk process aimed at the same directory (a second ``gantk train --out``, two
sweeps sharing an ``--out``) is refused with the first one's pid instead of interleaving its steps,
checkpoints and logs with the first one's, which would leave a run that neither process trained.
The lock dies with its process (a kill leaves no stale lock), and the empty-but-for-a-pid file it
leaves behind is harmless. The lock file is opened without following links
(:func:`gantk.base.safeio.open_nofollow`): a planted symlink or hard link is refused, never
truncated. Where ``fcntl`` does not exist (Windows) nothing is locked. Under
torchrun only rank 0 locks (the other ranks write nothing).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from ..train.distributed import is_main
from ..base.errors import GantkError, TrainingError
from ..base.safeio import ensure_dir, io_errors, open_nofollow

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: str | Path, *, doing: str = "is training into this run directory",
             fix: str = "wait for it to finish (or stop it), or give this run its own --out "
                        "directory.", error: type[GantkError] = TrainingError,
             name: str = LOCK_NAME) -> Iterator[None]:
    """Hold ``run_dir/name`` exclusively; a second holder is refused with ``error``, naming the
    first one's pid, what it ``is doing`` and the ``fix`` (a sweep locks its ``--out`` this way,
    as ``.sweep.lock``)."""

    run_dir = ensure_dir(run_dir)
    if fcntl is None or not is_main():
        yield
        return
    # never through a planted link: a `.lock` symlink to a file elsewhere would have that file
    # truncated to our pid, a dangling one would create a file outside the run (safeio)
    fd = open_nofollow(run_dir / name, os.O_RDWR | os.O_CREAT, what="lock file")
    try:
        try:  # a POSIX record lock belongs to this process: forked DataLoader workers, which
            # outlive a run, do not inherit it (an flock would stay held through their copies)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise error(f"another gantk process (pid {other}) {doing}", where=str(run_dir),
                        fix=fix) from None
        with io_errors(run_dir / name, "write the lock file"):  # a full disk: one paragraph
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
