"""Opening files to write without following a planted link (used through
:mod:`gantk.base.safeio`, which re-exports these).

A run or sweep directory may hold links someone else put there: ``RUN/.lock`` pointing at a
file of the user's, ``metrics.jsonl`` at a file elsewhere, a dangling link that would create a
file outside the run. :func:`open_nofollow` opens with ``O_NOFOLLOW`` and refuses links,
non-regular files and files with more than one hard link before anything is created, truncated
or written; :func:`no_link` refuses a linked folder; :func:`write_new` creates a write-once
file exclusively. Each refusal is one :class:`RunDirError` paragraph naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import Any

from .ioerrors import RunDirError, io_errors, os_error, trim


def link_error(path: str | Path, *, what: str = "file") -> RunDirError:
    """The paragraph for a planted symbolic (or extra hard) link where gantk writes."""

    path = Path(path)
    try:
        target = f" (it points at {trim(os.readlink(path), 200)})"
    except OSError:
        target = ""
    return RunDirError(f"this {what} is a symbolic link{target}; gantk never writes through a "
                       "link in a run or sweep directory, so the file it points at was not "
                       "touched", where=trim(path, 200),
                       fix="remove the link (`rm` on the link deletes only the link) and run the "
                           "same command again, or choose another --out directory.")


def no_link(path: str | Path, *, what: str = "folder") -> Path:
    """``path`` unless it is a symbolic link (a planted ``checkpoints/`` or ``samples/`` link
    would send gantk's writes, and its clean-up of temp files, elsewhere)."""

    path = Path(path)
    if os.path.islink(path):
        raise link_error(path, what=what)
    return path


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_nofollow(path: str | Path, flags: int, mode: int = 0o644, *, what: str = "file") -> int:
    """``os.open`` that never follows a link at ``path``: a symbolic link (dangling or not) is
    refused before anything is created or truncated, as are a FIFO, a device, a folder and a
    file with more than one hard link. ``O_TRUNC`` is applied only after those checks. Returns
    the descriptor (the caller closes it); every refusal is a :class:`RunDirError` naming
    ``path``."""

    path = Path(path)
    trunc = flags & os.O_TRUNC
    flags = (flags & ~os.O_TRUNC) | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | \
        getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block the open
    if not _NOFOLLOW and os.path.islink(path):  # pragma: no cover - Windows
        raise link_error(path, what=what)
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (os.path.islink(path) and exc.errno in (errno.ENOENT,
                                                                               errno.EEXIST)):
            raise link_error(path, what=what) from None
        with contextlib.suppress(OSError):
            if not stat.S_ISREG(os.lstat(path).st_mode):  # a FIFO without reader: ENXIO
                raise _not_regular(path, what) from None
        raise os_error(exc, path, f"open the {what}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, what)
        if st.st_nlink > 1:
            raise RunDirError(f"this {what} has {st.st_nlink} hard links: writing it would change "
                              "the other names' file too, so gantk left it alone",
                              where=trim(path, 200),
                              fix="remove this name (`rm` deletes only this link) and run the same "
                                  "command again.")
        if getattr(os, "O_NONBLOCK", 0):
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        if trunc:
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _not_regular(path: Path, what: str) -> RunDirError:
    return RunDirError(f"this {what} is not a regular file (a folder, pipe, socket or device)",
                       where=trim(path, 200), fix="remove it and run the same command again.")


def open_file(path: str | Path, mode: str = "a", *, what: str = "file") -> Any:
    """A Python file object of ``path`` opened through :func:`open_nofollow` (modes ``"a"``,
    ``"ab"``, ``"w"``, ``"wb"``, ``"r+"``, ``"r+b"``): for files written in place, such as a
    sweep's ``sweep.log``. Created with mode 0644 when missing (except ``r+``)."""

    base = mode.replace("b", "")
    flags = {"a": os.O_WRONLY | os.O_APPEND | os.O_CREAT,
             "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "r+": os.O_RDWR}[base]
    fd = open_nofollow(path, flags, what=what)
    return os.fdopen(fd, mode)


def write_new(path: str | Path, data: str | bytes, *, what: str = "file") -> bool:
    """Create ``path`` with ``data`` unless it exists (``O_CREAT | O_EXCL``, never through a
    link): for write-once files such as a run's marker. Returns whether this call created it;
    an existing regular file is left as it is."""

    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
                     | getattr(os, "O_CLOEXEC", 0), 0o644)
    except FileExistsError:
        if os.path.islink(path):
            raise link_error(path, what=what) from None
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.stat(path).st_mode):
                return False
        raise _not_regular(path, what)
    except OSError as exc:
        raise os_error(exc, path, f"create the {what}") from None
    try:
        with io_errors(path, f"write the {what}"):
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
    finally:
        os.close(fd)
    return True
