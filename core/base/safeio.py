"""Safe file I/O: the one way gantk writes, appends to and reads the files of a run directory.

* :func:`atomic_write` / :func:`atomic_path`: every file gantk rewrites (spec.json, spec.toml,
  checkpoints, a replayed metrics.jsonl, sample pictures, plots) goes to a temp file in the same
  folder, is fsynced and renamed over the target: a kill leaves the old file or the new one,
  never a torn one. Temp names start with ``.`` and end in ``.tmp``; :func:`sweep_temp` removes
  leftovers of killed writes on start.
* :func:`append_line`: a JSON-lines row is one ``write`` of a whole line, flushed and fsynced.
  A kill can still leave a partial last line; :func:`read_jsonl` skips (and reports) it, and the
  log-replay rule in :mod:`gantk.runs` rewrites the file without it on resume.
* :func:`regular_file`: anything gantk opens for reading must be a regular file, so a FIFO or a
  device named like a checkpoint is refused instead of hanging the command.
* Nothing gantk writes follows a planted link. :func:`open_nofollow` (and :func:`open_file`, its
  Python file object) opens with ``O_NOFOLLOW`` and refuses a symbolic link, a dangling one
  included (so no file is ever created outside the folder), anything but a regular file, and a
  file with more than one hard link (writing it would write the other name's file too);
  :func:`atomic_path` refuses a link standing at its target, and :func:`no_link` a linked
  sub-folder. The refusal names the link, and the file it points at is never opened. The run
  lock, the logs, the sweep's lock and log all go through these.
* Every ``OSError`` (full disk, read-only folder, a file where a folder should be, a symlink loop)
  becomes a :class:`RunDirError`: one paragraph naming the path and the fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .ioerrors import RunDirError, io_errors, os_error, trim
from .safeopen import link_error, no_link, open_file, open_nofollow, write_new

__all__ = ["RunDirError", "append_jsonl", "append_line", "atomic_path", "atomic_write",
           "ensure_dir", "io_errors", "is_dir", "is_regular", "link_error", "no_link",
           "open_file", "open_nofollow", "os_error", "read_jsonl", "read_text", "regular_file",
           "sha256_file", "sweep_temp", "trim", "write_new"]

TEMP_SUFFIX = ".tmp"


def ensure_dir(path: str | Path) -> Path:
    """Create a folder (and its parents) or say clearly why it cannot be one."""

    path = Path(path)
    with io_errors(path, "create the folder"):
        if os.path.lexists(path) and not is_dir(path):
            if path.is_symlink():
                raise RunDirError("this path is a symbolic link that leads to no folder (it is "
                                  "broken or loops)", where=str(path),
                                  fix="remove the link or give another folder path.")
            raise RunDirError("this path is a file, not a folder", where=str(path),
                              fix="give --out a folder path (new or an earlier run directory).")
        path.mkdir(parents=True, exist_ok=True)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - not every file system allows it
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; when the block ends without error the temp file is
    fsynced and renamed over ``path``. For libraries that insist on writing to a path
    (safetensors, matplotlib, PIL). A kill or error leaves ``path`` as it was."""

    path = Path(path)
    ensure_dir(path.parent)
    no_link(path, what="file")  # os.replace would swap the link for a file: refuse it instead
    with io_errors(path, "write the file"):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX,
                                        dir=path.parent)
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        with io_errors(path, "write the file"):
            yield tmp
            _commit(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _commit(tmp: Path, path: Path) -> None:
    """fsync the finished temp file and rename it over ``path`` (atomic on POSIX: readers see
    the old file or the new). The one place a rewrite lands (tests inject kills here)."""

    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename)."""

    path = Path(path)
    with atomic_path(path) as tmp:
        _write_all(tmp, data.encode() if isinstance(data, str) else data)
    return path


def _write_all(tmp: Path, payload: bytes) -> None:

    with open(tmp, "wb") as fh:
        fh.write(payload)
        fh.flush()


def append_line(path: str | Path, line: str) -> None:
    """Append one line (no newline inside) with a single write, flushed to disk. After a torn
    last line (a kill mid-append) the new row starts on a line of its own, so it is never glued
    to the fragment."""

    path = Path(path)
    payload = (line.rstrip("\n") + "\n").encode()
    fd = open_nofollow(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, what="log file")
    with io_errors(path, "append to the file"):
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                payload = b"\n" + payload
            _append(fd, payload)
        finally:
            os.close(fd)


def _append(fd: int, payload: bytes) -> None:
    """The one place a log row lands (tests inject kills and torn rows here)."""

    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def append_jsonl(path: str | Path, row: dict[str, Any]) -> None:
    append_line(path, json.dumps(row, allow_nan=True))


def regular_file(path: str | Path, *, what: str = "file") -> Path:
    """``path`` if it is a regular file (symlinks followed); a clear refusal otherwise.

    ``os.stat`` never blocks, so a FIFO or a device is refused before anything opens it."""

    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise RunDirError(f"no such {what}", where=str(path), fix="check the path.") from None
    except OSError as exc:
        raise os_error(exc, path, f"read the {what}") from None
    if not stat.S_ISREG(st.st_mode):
        raise RunDirError(f"this {what} is not a regular file (a folder, pipe, socket or device)",
                          where=str(path), fix="remove it or point at a regular file.")
    return path


def is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def is_dir(path: Path) -> bool:
    """Like ``Path.is_dir`` but never raises (symlink loops, permissions)."""

    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def read_text(path: str | Path, *, what: str = "file") -> str:
    """A regular file's text; bad UTF-8 and I/O failures become one clear paragraph."""

    path = regular_file(path, what=what)
    with io_errors(path, f"read the {what}"):
        raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunDirError(f"the {what} is not valid UTF-8 text (byte {exc.start})",
                          where=str(path), fix="save it as UTF-8 text.") from None


def read_jsonl(path: str | Path, *, warn: Callable[[str], None] | None = None,
               strict: bool = False) -> list[dict[str, Any]]:
    """The JSON-object rows of a JSON-lines file.

    A partial last line (a kill during an append) is skipped with a warning. A damaged line
    elsewhere is skipped with a warning too, or refused with ``strict``."""

    path = Path(path)
    if not path.exists():
        return []
    text = read_text(path, what="log file")
    lines = text.split("\n")
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
            continue
        last = i == len(lines) or (i == len(lines) - 1 and lines[-1] == "")
        if strict and not last:
            raise RunDirError(f"line {i} is not a JSON object", where=f"{path}:{i}",
                              fix="delete or repair that line.")
        if warn is not None:
            kind = "partial last line" if last else f"damaged line {i}"
            warn(f"{path}: skipped a {kind} ({trim(line, 60)!r})")
    return rows


def sweep_temp(folder: str | Path, *, broad: bool = False) -> list[Path]:
    """Remove temp files of killed writes in ``folder``: gantk's ``.NAME.XXXX.tmp`` and, with
    ``broad`` (for ``checkpoints/``, which holds nothing else), any ``*.tmp*`` leftover such as
    safetensors-style temp names. Returns what was removed."""

    folder = Path(folder)
    removed = []
    if not is_dir(folder):
        return removed
    for f in folder.iterdir():
        name = f.name
        if (name.startswith(".") and name.endswith(TEMP_SUFFIX)) or (broad and ".tmp" in name):
            if is_regular(f) or f.is_symlink():
                with contextlib.suppress(OSError):
                    f.unlink()
                    removed.append(f)
    return removed


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with io_errors(path, "read the file"), open(regular_file(path), "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()
