"""File-system failures as one paragraph: :class:`RunDirError`, and the ``OSError`` ->
paragraph rule every reader and writer of :mod:`gantk.base.safeio` uses."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import GantkError


class RunDirError(GantkError):
    """A file or folder gantk cannot read or write (full disk, permissions, odd file types)."""


def trim(text: Any, limit: int = 300) -> str:
    """``str(text)`` cut to ``limit`` characters, saying how much was left out."""

    s = str(text)
    return s if len(s) <= limit else f"{s[:limit]}... ({len(s) - limit} more characters)"


def os_error(exc: OSError, path: str | Path, action: str) -> RunDirError:
    """An ``OSError`` as one paragraph: what failed, where, why, and what to do."""

    why = exc.strerror or trim(exc, 200) or type(exc).__name__
    fixes = {
        errno.ENOSPC: "free disk space (or point --out at another disk) and run the same command "
                      "again; the checkpoints already written are untouched.",
        errno.EDQUOT: "free space within your quota and run the same command again.",
        errno.EACCES: "choose a folder you can write to, or fix its permissions.",
        errno.EPERM: "choose a folder you can write to, or fix its permissions.",
        errno.EROFS: "the file system is read-only; choose another folder.",
        errno.ELOOP: "a symbolic link points (directly or not) at itself; remove it or choose "
                     "another folder.",
        errno.ENOTDIR: "a file stands where a folder is needed; choose another path.",
        errno.EEXIST: "a file stands where a folder is needed; choose another path.",
        errno.EISDIR: "a folder stands where a file is needed; choose another path.",
    }
    return RunDirError(f"cannot {action} ({why})", where=trim(path, 200),
                       fix=fixes.get(exc.errno or 0, "check the path, its permissions and the "
                                     "free disk space, then run the same command again."))


@contextlib.contextmanager
def io_errors(path: str | Path, action: str) -> Iterator[None]:
    """Turn any ``OSError`` inside the block into a :class:`RunDirError` about ``path``."""

    try:
        yield
    except RunDirError:
        raise
    except OSError as exc:
        raise os_error(exc, getattr(exc, "filename", None) or path, action) from None
