"""Launchers: how a sweep's runs are started, and the loop that keeps them going.

A launcher is an object with

* ``slots`` - how many runs it keeps going at once;
* ``start(run) -> handle`` - start ``gantk.sweeps.worker_command(run.dir)`` somewhere, without
  waiting (the worker reads ``run.dir/sweep_job.json`` and writes ``sweep_result.json``, or
  ``sweep_error.txt`` when it fails);
* ``poll(handle) -> int | None`` - its exit status once it has ended, else None;
* ``stop(handle)`` - end it (the sweep was interrupted; the run resumes next time).

Optional members: ``configure(options, out=OUT)`` takes the sweep file's ``[launcher]`` settings
(:func:`find_launcher`); ``detached = True`` says its jobs outlive ``gantk sweep`` (``--submit``
hands them over and returns; Ctrl-C leaves them running); ``flush()`` submits what ``start``
collected; ``wait_stopped(handles)`` waits for stopped runs to save; ``describe(run)`` gives
``--status`` a line about the run's job. ``run.command`` is the worker's command line.

:class:`LocalLauncher` (the default, ``launcher = "local"``) runs them as child processes here. A
plugin offers another (a cluster scheduler) by implementing the ``gantk_sweep_launcher`` hook
(see :mod:`gantk.hookspecs`) and returning its launcher when asked for its name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..base.errors import PluginError, SweepError
from ..base.safeio import atomic_write
from ..store.jobfiles import ERROR_FILE, LOG_FILE, worker_command
from .runfiles import lock_holder, open_append, read_small_text


#: the environment variable naming the sweep process to a local worker: the worker dies with it
PARENT_ENV = "GANTK_SWEEP_PARENT"
#: a worker's exit status when another process already works on its run directory
BUSY_CODE = 75


class LocalLauncher:
    """Child processes on this machine, ``slots`` at a time; output to ``RUN_DIR/sweep.log``.

    Each worker starts in a process group of its own, so a Ctrl-C at the terminal (SIGINT to
    the sweep's group) reaches the sweep alone, which then sends each worker one SIGTERM (a
    worker saves a checkpoint at its next step on the first signal and exits at once on a
    second). Each worker is told the sweep's pid and dies with it (``PR_SET_PDEATHSIG`` on Linux,
    a watchdog elsewhere: :mod:`gantk.sweeping.worker`), so ``kill -9`` of the sweep leaves no
    worker training on."""

    def __init__(self, slots: int = 1) -> None:
        self.slots = max(1, int(slots))

    def start(self, run: Any) -> subprocess.Popen:
        log = open_append(run.dir / LOG_FILE)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", PARENT_ENV: str(os.getpid())}
        group = {"process_group": 0} if os.name == "posix" else {}
        try:
            return subprocess.Popen(worker_command(run.dir), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, **group)
        finally:
            os.close(log)

    def poll(self, handle: subprocess.Popen) -> int | None:
        return handle.poll()

    def stop(self, handle: subprocess.Popen) -> None:
        """Ask the worker to stop: one SIGTERM, never a second (see :meth:`wait_stopped`)."""
        if handle.poll() is None and not getattr(handle, "_gantk_stopping", False):
            handle._gantk_stopping = True  # type: ignore[attr-defined]
            handle.terminate()

    def wait_stopped(self, handles: list[subprocess.Popen], timeout: float = 120.0) -> None:
        """Wait for stopped workers to save their checkpoint and exit; kill those still running
        after ``timeout`` seconds (their newest checkpoint stays)."""
        deadline = time.monotonic() + timeout
        for h in handles:
            try:
                h.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                h.kill()
                h.wait()


def find_launcher(name: str, jobs: int, manager: Any, options: dict[str, Any] | None = None,
                  out: Path | None = None) -> Any:
    """``local``, or the first launcher a plugin returns for ``name``, given the settings of the
    sweep file's ``[launcher]`` table (``options``) through its ``configure(options, out=OUT)``."""

    if name == "local":
        if options:
            raise SweepError(f"the local launcher takes no settings ({', '.join(options)})",
                             where="launcher", fix='write launcher = "local", or name the '
                                                   'launcher the settings are for.')
        return LocalLauncher(jobs)
    found = manager.hook.gantk_sweep_launcher(name=name, jobs=jobs)
    if found is None:
        raise PluginError(f"no installed plugin provides the sweep launcher {name!r}",
                          where="launcher", fix="use launcher = \"local\", or install the plugin "
                                                "that implements gantk_sweep_launcher for it "
                                                "(launcher = \"submitit\" needs the submitit "
                                                "package: pip install 'gantk[slurm]').")
    configure = getattr(found, "configure", None)
    if configure is not None:
        configure(dict(options or {}), out=out)
    elif options:
        raise SweepError(f"the launcher {name!r} takes no settings ({', '.join(options)})",
                         where="launcher", fix=f'write launcher = "{name}".')
    return found


#: exit statuses of a run process stopped by a signal rather than failed: the worker's own 130
#: (it saved a checkpoint, or was evaluating), or death by SIGINT / SIGTERM before it could say
STOPPED_CODES = frozenset({130, -signal.SIGINT, -signal.SIGTERM})


def _failure(run: Any, code: int) -> str:
    err = run.dir / ERROR_FILE
    text = read_small_text(err)
    if text is not None:
        return text
    log = read_small_text(run.dir / LOG_FILE, limit=1 << 20) or ""
    tail = log.splitlines()[-3:]
    text = f"the run process ended with status {code}" + (": " + " / ".join(tail) if tail else "")
    if lock_holder(run.dir) is None:  # never write into a directory another process works in
        atomic_write(err, text + "\n")
    return text


class Elsewhere:
    """A handle for a run that another process works on (a worker an earlier, killed sweep left
    running, or a `gantk train` into the same folder): the sweep waits for its lock to be free,
    holding a slot meanwhile, and touches nothing in its directory."""

    def __init__(self, run: Any, pid: str) -> None:
        self.run, self.pid = run, pid

    def poll(self) -> int | None:
        return None if lock_holder(self.run.dir) is not None else 0


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt here, even in a background process (where
    SIGINT starts ignored), so a killed sweep stops its runs instead of orphaning them."""

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _next_ready(queue: list[Any], running: dict[int, tuple[Any, Any, float]]) -> Any:
    """Take the first queued run that can start: a run that evaluates another run's networks
    (``source``, a ``train_as`` cell) waits until that run is neither queued nor running."""

    busy = {r.dir for r in queue} | {r.dir for r, _, _ in running.values()}
    for i, run in enumerate(queue):
        if getattr(run, "source", None) is None or run.source not in busy:
            return queue.pop(i)
    return None


def run_all(runs: list[Any], launcher: Any, *, on_event: Callable[[str], None],
            poll_every: float = 0.5, prepare: Callable[[Any], Any] | None = None,
            submit_only: bool = False) -> dict[str, Any]:
    """Start every unfinished run, at most ``launcher.slots`` at once, until all have ended.

    ``prepare(run)`` is called just before a run starts (it writes the run's job file). A run
    whose directory another process holds (:func:`lock_holder`: a worker left by a killed sweep)
    is neither prepared nor started: it holds a slot until that process ends, then counts as
    finished or is started to resume.

    Reports progress through ``on_event`` (done / running / failed / ETA from the mean wall time
    of the runs finished in this call). Returns the counts and, under ``"stopped"``, the runs
    whose own process was stopped by a signal (SIGTERM or Ctrl-C to that process alone): those
    are not failures, their checkpoints stay and the next call resumes them, and the runs that
    evaluate their networks (``train_as``) wait for that call too. With ``submit_only`` (a
    launcher whose jobs outlive this process, ``launcher.detached``) every run that can start
    is handed over and it returns at once, the runs under ``"submitted"``. On KeyboardInterrupt (or any
    error of the sweep itself) each running run is asked once to stop (its checkpoint stays; the
    next call resumes it) and it re-raises."""

    todo = [r for r in runs if not r.finished]
    done_before = len(runs) - len(todo)
    running: dict[int, tuple[Any, Any, float]] = {}
    done, failed, durations = done_before, 0, []
    stopped: list[Any] = []
    total = len(runs)

    def report(event: str) -> None:
        left = total - done - failed - len(stopped)
        eta = None
        if durations:
            eta = sum(durations) / len(durations) * max(0, left - len(running) / 2) / \
                max(1, launcher.slots)
        paused = f"{len(stopped)} stopped, " if stopped else ""
        on_event(f"[{done}/{total} done, {len(running)} running, {failed} failed, {paused}"
                 f"{eta_text(eta)}] {event}")

    def wait_elsewhere(run: Any, pid: str) -> None:
        running[id(run)] = (run, Elsewhere(run, pid), time.monotonic())
        report(f"{run.cell} seed {run.seed} is being run by another process (pid {pid}; a "
               "worker of an earlier sweep?): waiting for it, touching nothing in its directory")

    if done_before:
        report(f"{done_before} run(s) already finished, skipped")
    queue = list(todo)
    submitted: list[Any] = []
    with _interruptible():
        try:
            while queue or running:
                while queue and (submit_only or len(running) < launcher.slots):
                    run = _next_ready(queue, running)
                    if run is None:  # only train_as runs whose training runs now are left
                        break
                    pid = lock_holder(run.dir)
                    if pid is not None:
                        wait_elsewhere(run, pid)
                        continue
                    if prepare is not None:
                        prepare(run)
                    running[id(run)] = (run, launcher.start(run), time.monotonic())
                    submitted.append(run)
                    report(f"started {run.cell} seed {run.seed}")
                if submit_only:
                    flush = getattr(launcher, "flush", None)
                    if flush is not None:
                        flush()
                    return {"done": done, "failed": 0, "total": total, "stopped": [],
                            "submitted": submitted, "waiting": queue}
                time.sleep(poll_every)
                for key, (run, handle, t0) in list(running.items()):
                    code = handle.poll() if isinstance(handle, Elsewhere) else launcher.poll(handle)
                    if code is None:
                        continue
                    del running[key]
                    if isinstance(handle, Elsewhere) or code == BUSY_CODE:
                        if run.finished:
                            done += 1
                            report(f"{run.cell} seed {run.seed} was finished by the other process")
                        elif code == BUSY_CODE and (pid := lock_holder(run.dir)) is not None:
                            wait_elsewhere(run, pid)
                        else:
                            queue.insert(0, run)  # started again: it resumes from its checkpoint
                    elif code == 0 and run.finished:
                        done += 1
                        durations.append(time.monotonic() - t0)
                        report(f"finished {run.cell} seed {run.seed} "
                               f"({time.monotonic() - t0:.0f} s)")
                    elif code in STOPPED_CODES:
                        stopped.append(run)
                        held = [r for r in queue if getattr(r, "source", None) == run.dir]
                        for r in held:
                            queue.remove(r)
                            stopped.append(r)
                        report(f"stopped {run.cell} seed {run.seed} by a signal to its process "
                               "(not a failure: its checkpoints stay, the same command resumes "
                               "it" + (f"; {len(held)} run(s) evaluating its networks wait for "
                                       "it" if held else "") + ")")
                    else:
                        failed += 1
                        report(f"FAILED {run.cell} seed {run.seed}: {_failure(run, code)}")
        except BaseException as exc:
            if getattr(launcher, "detached", False):  # scheduler jobs go on without this call
                for _, handle, _ in running.values():
                    if not isinstance(handle, Elsewhere):
                        launcher.stop(handle)
                if isinstance(exc, KeyboardInterrupt):
                    report("interrupted: the submitted jobs go on (gantk sweep --status shows "
                           "them); run the same command to wait for them again")
                raise
            mine = [h for _, h, _ in running.values() if not isinstance(h, Elsewhere)]
            for handle in mine:  # one stop request each: a worker saves its checkpoint
                launcher.stop(handle)
            waiter = getattr(launcher, "wait_stopped", None)
            if waiter is not None and mine:
                waiter(mine)
            if isinstance(exc, KeyboardInterrupt):
                report("interrupted: running runs stopped; run the same command to resume")
            raise
    return {"done": done, "failed": failed, "total": total, "stopped": stopped,
            "submitted": submitted, "waiting": []}


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "ETA ?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"ETA {h}h{m:02d}m" if h else f"ETA {m}m{s:02d}s"

