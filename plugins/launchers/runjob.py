"""What one submitit job runs (:class:`RunJob`), and how a run's outcome is read from its
directory once its job has ended (never from submitit's result pickle)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

LOG_FILE = "sweep.log"
RESULT_FILE = "sweep_result.json"
ERROR_FILE = "sweep_error.txt"


def _regular_fd(path: Path, flags: int) -> int | None:
    """``os.open`` of a regular file without following a link or blocking on a FIFO."""
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0),
                     0o644)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return fd


def _outcome(run_dir: Path) -> int:
    """A run's exit status read from its directory once its job has ended: 0 finished, 2
    failed (the worker wrote its paragraph), 130 neither (stopped: the next call resubmits)."""
    fd = _regular_fd(run_dir / RESULT_FILE, os.O_RDONLY)
    if fd is not None:
        with os.fdopen(fd, "rb") as fh:
            try:
                if isinstance(json.loads(fh.read(64 << 20)), dict):
                    return 0
            except ValueError:
                pass
    return 2 if os.path.lexists(run_dir / ERROR_FILE) else 130


class RunJob:
    """What one submitit job runs: the sweep worker of one run, as a child process (under
    torchrun with ``nproc`` > 1 processes) writing to ``RUN_DIR/sweep.log``. Returns its exit
    status. Checkpointable: on a time limit or preemption :meth:`checkpoint` stops the worker
    once (it saves a checkpoint) and returns a fresh job for submitit to requeue."""

    def __init__(self, command: list[str], run_dir: str, nproc: int = 1,
                 stop_wait_s: float = 300.0) -> None:
        self.command, self.run_dir, self.nproc = list(command), str(run_dir), int(nproc)
        self.stop_wait_s = stop_wait_s
        self._proc: subprocess.Popen | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_proc"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._proc = None

    def argv(self) -> list[str]:
        if self.nproc <= 1:
            return self.command
        python, rest = self.command[0], self.command[1:]  # [python, -m, module, RUN_DIR]
        return [python, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={self.nproc}", *rest]

    def __call__(self) -> int:
        log = _regular_fd(Path(self.run_dir) / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.nproc <= 1:  # the worker dies with this job process (torchrun's agent does so)
            env["GANTK_SWEEP_PARENT"] = str(os.getpid())
        self._proc = subprocess.Popen(self.argv(), stdout=log if log is not None else None,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        if log is not None:
            os.close(log)
        try:
            while (code := self._proc.poll()) is None:
                time.sleep(0.5)  # not Popen.wait: checkpoint() runs in a signal handler here
            return code
        except BaseException:  # cancelled: one stop request, then let it save
            self._stop()
            raise

    def _stop(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_wait_s
        while time.monotonic() < deadline:
            try:  # look without reaping: the loop in __call__ reaps it
                if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    return
            except ChildProcessError:
                return
            time.sleep(0.2)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        from submitit.helpers import DelayedSubmission

        self._stop()
        return DelayedSubmission(RunJob(self.command, self.run_dir, self.nproc,
                                        self.stop_wait_s))
