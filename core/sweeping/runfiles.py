"""The files a sweep opens in its own directories, opened so that nothing planted there can hang
it, redirect its writes or turn a damaged file into a wrong answer.

* :func:`held_lock`: the sweep lock ``OUT/.sweep.lock`` and each worker's ``RUN/.sweep_worker.lock``
  are opened without following a symbolic link (``O_NOFOLLOW``) and only as regular files, then
  locked with ``lockf`` (the lock dies with its process).
* :func:`lock_holder`: whether another process holds a run's worker lock or training lock (a
  worker left running by a sweep that was killed): such a run is neither written to nor started.
* :func:`open_append`: a worker's ``sweep.log`` is appended to only when it is a regular file (a
  FIFO would block the open forever).
* :func:`read_json_file`: a job or result file that is torn, empty or not a JSON object is
  recognised as damaged (with the reason), never as "made with other settings".
* :func:`check_run_files`: before a sweep writes anything, every sweep file that already exists
  in a run directory (and the run and cell folders themselves) must be a regular file (folder),
  not a symbolic link, FIFO or device; otherwise one paragraph names them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..base.errors import GantkError, SweepError
from ..base.safeio import RunDirError, ensure_dir, os_error
from ..store.jobfiles import ERROR_FILE, JOB_FILE, LOG_FILE, RESULT_FILE, SWEEP_LOCK
from ..store.runlock import LOCK_NAME

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

WORKER_LOCK = ".sweep_worker.lock"  # held by a run's worker process for its whole life
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: the sweep's own files in a run directory (what check_run_files looks at)
RUN_FILES = (JOB_FILE, RESULT_FILE, ERROR_FILE, LOG_FILE, WORKER_LOCK)


def _not_regular(path: Path, what: str) -> RunDirError:
    return RunDirError(f"the {what} is a symbolic link, FIFO, socket, device or folder, not a "
                       "regular file; gantk does not open such a file inside a sweep directory "
                       "(it could hang the sweep or redirect its writes elsewhere)",
                       where=str(path), fix="remove it (rm) and run the same command again.")


def open_regular(path: str | Path, flags: int, *, what: str = "file", mode: int = 0o644) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` and anything but a regular file,
    without blocking on a FIFO; returns a blocking file descriptor."""

    path = Path(path)
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EMLINK):  # a link, or a FIFO no one reads
            raise _not_regular(path, what) from None
        raise os_error(exc, path, f"open the {what}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _not_regular(path, what)
        if _NONBLOCK and fcntl is not None:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def held_lock(folder: str | Path, name: str, *, doing: str, fix: str,
              error: type[GantkError] = SweepError) -> Iterator[None]:
    """Hold ``folder/name`` exclusively (the holder's pid written into it); another holder is
    refused with ``error`` naming its pid. Never follows a symbolic link at ``folder/name``."""

    folder = ensure_dir(folder)
    if fcntl is None:  # pragma: no cover - Windows: nothing is locked
        yield
        return
    fd = open_regular(folder / name, os.O_RDWR | os.O_CREAT, what="lock file")
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise os_error(exc, folder / name, "lock the file") from None
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise error(f"another gantk process (pid {other}) {doing}", where=str(folder),
                        fix=fix) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def lock_holder(folder: str | Path, names: tuple[str, ...] = (WORKER_LOCK, LOCK_NAME)
                ) -> str | None:
    """The pid (as text, or ``"unknown"``) of another process that holds one of these locks in
    ``folder``; None when none is held. Creates nothing and never follows a link."""

    if fcntl is None:  # pragma: no cover - Windows
        return None
    for name in names:
        try:
            fd = os.open(Path(folder) / name, os.O_RDWR | _NOFOLLOW | _NONBLOCK | _CLOEXEC)
        except OSError:  # absent, a link, a FIFO without reader: not a lock anyone holds
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EACCES, errno.EAGAIN):
                    return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        finally:
            os.close(fd)  # also releases the probe's own lock
    return None


def open_append(path: str | Path, *, what: str = "log file") -> int:
    """A file descriptor appending to ``path`` (created when missing), refused when ``path`` is
    a link, FIFO or device (a FIFO would block the open until someone reads it)."""

    return open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, what=what)


def read_json_file(path: str | Path, *, limit: int = 64 << 20) -> tuple[dict[str, Any] | None,
                                                                       str | None]:
    """``(object, None)``, ``(None, None)`` when there is no file, or ``(None, why)`` when the
    file is damaged: empty, torn, not a JSON object, too large, not a regular file."""

    path = Path(path)
    if not os.path.lexists(path):
        return None, None
    try:
        fd = open_regular(path, os.O_RDONLY)
    except RunDirError as exc:  # a link, FIFO, device; or unreadable
        return None, exc.message
    try:
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    if not raw.strip():
        return None, "it is empty (0 bytes of JSON)" if not raw else "it holds only whitespace"
    if len(raw) > limit:
        return None, f"it is larger than {limit >> 20} MiB"
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return None, f"it is not valid JSON (torn or damaged: {exc})"
    if not isinstance(data, dict):
        return None, f"it holds a JSON {type(data).__name__}, not an object"
    return data, None


def read_small_text(path: str | Path, *, limit: int = 64 << 10) -> str | None:
    """The text of a small sweep file (an error paragraph), cut at ``limit`` bytes; None when
    there is none. A link or FIFO in its place is named, never followed or opened."""

    path = Path(path)
    if not os.path.lexists(path):
        return None
    try:
        fd = open_regular(path, os.O_RDONLY)
    except RunDirError as exc:
        return exc.paragraph()
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read(limit + 1)
    text = raw[:limit].decode("utf-8", errors="replace").strip()
    return text + (" ... (cut)" if len(raw) > limit else "")


def _odd(path: Path, want_dir: bool) -> bool:
    """Whether an existing ``path`` is a link or the wrong kind of file."""

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return not (stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode))


def check_run_files(runs: list[Any]) -> None:
    """Refuse, before anything is written, run and cell folders that are not plain folders and
    sweep files in them that are not regular files (links, FIFOs, devices)."""

    bad: list[Path] = []
    seen: set[Path] = set()
    for r in runs:
        for folder in (r.dir.parent, r.dir):
            if folder not in seen:
                seen.add(folder)
                if _odd(folder, True):
                    bad.append(folder)
        if r.dir in bad or r.dir.parent in bad or not os.path.lexists(r.dir):
            continue
        bad += [r.dir / name for name in RUN_FILES if _odd(r.dir / name, False)]
    if bad:
        names = ", ".join(str(p) for p in bad[:3]) + (f" and {len(bad) - 3} more"
                                                      if len(bad) > 3 else "")
        raise SweepError(f"{len(bad)} path(s) in the sweep directory are symbolic links, FIFOs, "
                         f"sockets or devices where gantk keeps its own folders and files "
                         f"({names}); gantk neither follows nor opens them (a FIFO would hang "
                         "the sweep, a link would send its writes elsewhere)",
                         where=str(bad[0]), fix="remove them (rm) and run the same command "
                                                "again; nothing has been run.")


def made_by_a_sweep(out: Path) -> bool:
    """A sweep directory made before sweeps carried their marker: it holds the sweep's lock or
    summary, or gantk's run-folder layout (CELL/seed_N)."""
    if any(os.path.lexists(out / name) for name in (SWEEP_LOCK, "summary.json", "summary.md")):
        return True
    return any(True for _ in out.glob("*/seed_*"))
