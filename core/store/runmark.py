"""The marker that makes a folder a gantk run (or sweep) directory: gantk writes into a folder
only if it made it.

``RUN_DIR/.gantk-run`` (``OUT/.gantk-sweep`` for a sweep) is a small JSON object written when
gantk first takes a folder: ``{"format": "gantk-run", "version": 1, "created": ...}``.
:func:`claim_dir` is called before anything is written (before the lock, the temp-file clean-up,
the log replay): a new or empty folder is marked and taken; a marked one is taken; a folder gantk
made before the marker existed is recognised by its own files, marked and taken; any other
non-empty folder is refused with one paragraph, and nothing in it is deleted, truncated or
overwritten. An empty path (``--out ""``) is refused rather than read as the current folder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from ..base.safeio import (RunDirError, ensure_dir, is_dir, is_regular, link_error, read_text,
                           trim, write_new)
from .jobfiles import JOB_FILE

RUN_MARKER = ".gantk-run"
SWEEP_MARKER = ".gantk-sweep"
MARKERS = {"run": RUN_MARKER, "sweep": SWEEP_MARKER}
# files gantk itself may leave in a folder before it is marked (a lock taken by an older gantk)
_HARMLESS = {".lock", ".sweep.lock"}


def marker_of(kind: str) -> str:
    return MARKERS[kind]


def is_marked(path: str | Path, kind: str = "run") -> bool:
    """Whether ``path`` holds gantk's marker of ``kind``: a regular file (not a link) of that
    name. Its JSON is informative only: a marker torn by a kill still marks the folder."""

    f = Path(path) / MARKERS[kind]
    return not os.path.islink(f) and is_regular(f)


def legacy_run(path: str | Path) -> bool:
    """A run directory gantk wrote before the marker existed: a ``spec.json`` holding a gantk
    stack next to ``checkpoints/``, ``metrics.jsonl`` or ``spec.toml``, or a gantk checkpoint in
    ``checkpoints/`` (its spec.json may be damaged); or a run a sweep prepared (its
    ``sweep_job.json``)."""

    path = Path(path)
    if is_regular(path / JOB_FILE) and not os.path.islink(path / JOB_FILE):
        return True
    if any(_gantk_checkpoint(f) for f in _step_files(path / "checkpoints")):
        return True
    spec = path / "spec.json"
    if os.path.islink(spec) or not is_regular(spec):
        return False
    try:
        d = json.loads(read_text(spec, what="spec.json"))
    except (RunDirError, ValueError, RecursionError):
        return False
    stored = isinstance(d, dict) and all(isinstance(d.get(k), dict)
                                         for k in ("backbone", "loss", "data", "train"))
    return stored and any(os.path.lexists(path / n)
                          for n in ("checkpoints", "metrics.jsonl", "spec.toml"))


def _step_files(folder: Path) -> list[Path]:
    if os.path.islink(folder) or not is_dir(folder):
        return []
    return [folder / n for n in _contents(folder)[-8:]
            if n.startswith("step_") and n.endswith(".safetensors")]


def _gantk_checkpoint(f: Path) -> bool:
    """Whether ``f`` is a safetensors file whose header says gantk wrote it (header only)."""

    if os.path.islink(f) or not is_regular(f):
        return False
    try:
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if not 0 < n <= 100_000_000:
                return False
            header = json.loads(fh.read(n))
    except (OSError, ValueError):
        return False
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return isinstance(meta, dict) and meta.get("format") == "gantk-checkpoint"


def _contents(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def check_path_given(path: str | Path | None, flag: str) -> None:
    """Refuse an empty ``--out`` (``Path("")`` is the current folder)."""

    if path is not None and not str(path).strip():
        raise RunDirError("the path is empty (it would mean the current folder)", where=flag,
                          fix=f"give {flag} a new folder, e.g. {flag} runs/NAME.")


def claim_dir(path: str | Path, *, kind: str = "run", write: bool = True,
              recognise: Callable[[Path], bool] | None = None, flag: str = "--out") -> Path:
    """Take ``path`` for gantk (a run with ``kind="run"``, a sweep's ``--out`` with
    ``kind="sweep"``): create it if missing; accept it when empty, marked, or recognised by
    ``recognise`` (default for runs: :func:`legacy_run`), and then write the marker (with
    ``write``; under torchrun only rank 0 writes); refuse anything else with a paragraph
    naming the path and the fix. Nothing is deleted or changed in a refused folder."""

    check_path_given(path, flag)
    path = Path(path)
    marker = path / MARKERS[kind]
    if os.path.islink(marker):
        raise link_error(marker, what="marker file")
    if not os.path.lexists(path):
        if write:
            ensure_dir(path)
            _write_marker(marker, kind)
        return path
    ensure_dir(path)  # a file, a dangling link or a loop: one paragraph
    if is_marked(path, kind):
        return path
    names = [n for n in _contents(path) if n not in _HARMLESS]
    if recognise is None and kind == "run":
        recognise = legacy_run
    if names and not (recognise is not None and recognise(path)):
        shown = [n + (" (a symbolic link)" if os.path.islink(path / n) else "") for n in names[:5]]
        listed = ", ".join(shown) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        other = next((k for k in MARKERS if k != kind and is_marked(path, k)), None)
        what = f"a gantk {other} directory" if other else "not a gantk " + kind + " directory"
        raise RunDirError(
            f"this folder is {what} (it has no {MARKERS[kind]} marker) and is not empty: it holds "
            f"{trim(listed, 300)}; gantk writes only into folders it made, so nothing in it was "
            "touched", where=trim(path, 200),
            fix=f"give {flag} a new or empty folder (e.g. {flag} {trim(path, 100)}/run1 or a "
                "fresh name)." if other is None else
            f"give {flag} a new or empty folder; this one belongs to a gantk {other}.")
    if write:
        _write_marker(marker, kind)
    return path


def _write_marker(marker: Path, kind: str) -> None:
    """Write-once (never a rewrite): an existing marker is left as it is."""
    try:
        from importlib.metadata import version

        gantk = version("gantk")
    except Exception:  # noqa: BLE001 - a bare checkout
        gantk = ""
    write_new(marker, json.dumps({"format": f"gantk-{kind}", "version": 1, "gantk": gantk,
                                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                           time.gmtime())}) + "\n",
              what="marker file")


__all__ = ["RUN_MARKER", "SWEEP_MARKER", "check_path_given", "claim_dir", "is_marked",
           "legacy_run", "marker_of"]
