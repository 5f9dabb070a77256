"""``launcher = "submitit"``: a sweep's runs as SLURM jobs through submitit (or as submitit's
local processes), one job per run.

The sweep file's ``[launcher]`` table (or ``gantk sweep --set launcher.KEY=VALUE``) holds the
settings, checked by :class:`SubmititOptions`. Each run is submitted as a :class:`RunJob`, which
runs the sweep worker (``run.command``; under ``torchrun`` when ``nproc_per_node`` > 1) as a
child process writing to ``RUN_DIR/sweep.log``. The runs of one call go out as one job array
(``array_parallelism`` of them at once). Job ids are recorded in ``OUT/sweep_jobs.json``, so a
later ``gantk sweep`` attaches to jobs still queued or running instead of submitting them twice,
and ``gantk sweep --status`` shows them.

Time limits and preemption: SLURM signals the job (``USR2``, ``signal_delay_s`` before the
limit); submitit calls :meth:`RunJob.checkpoint`, which sends the worker one SIGTERM (it saves a
checkpoint at its next step and exits) and hands submitit a fresh job to requeue, which resumes
from that checkpoint. A job that ends without a result (cancelled, killed, out of requeues) is
resubmitted by the next ``gantk sweep``, and resumes too.

The outcome of a job is read from its run directory (``sweep_result.json`` or
``sweep_error.txt``), never from submitit's result pickle: no file on disk makes gantk unpickle.
(submitit itself stores each submitted job as a pickle in ``OUT/.submitit``, as for any
submitit user: keep that folder writable only by you.)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gantk import PluginError, SpecError

from .runjob import RunJob, _outcome, _regular_fd

JOBS_FILE = "sweep_jobs.json"  # OUT/sweep_jobs.json: run folder -> its latest job
#: SLURM states after which a job will not run again by itself
ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                   "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "REVOKED", "FINISHED",
                   "INTERRUPTED", "NO PROCESS AND NO RESULT"})


class SubmititOptions(BaseModel):
    """The ``[launcher]`` table of ``launcher = "submitit"`` (docs/sweeps.md, "SLURM")."""

    model_config = ConfigDict(extra="forbid")
    cluster: Literal["auto", "slurm", "local"] = Field(
        "auto", description="slurm, local (submitit's local processes), auto: slurm where sbatch "
        "exists")
    partition: str | None = Field(None, max_length=200, description="SLURM partition")
    time_min: float = Field(60, gt=0, le=60 * 24 * 60, description="time limit per job, minutes "
                            "(a job past it checkpoints and is requeued)")
    gpus_per_task: int = Field(0, ge=0, le=64, description="GPUs of one run's job")
    cpus_per_task: int = Field(4, ge=1, le=1024, description="CPU cores of one run's job")
    mem_gb: float | None = Field(None, gt=0, le=65536, description="memory of one job, GB")
    nproc_per_node: int | None = Field(None, ge=1, le=64, description="torchrun processes per "
                                       "job (default: gpus_per_task, at least 1)")
    array_parallelism: int = Field(64, ge=1, le=100_000, description="jobs of the array that "
                                   "run at once")
    account: str | None = Field(None, max_length=200)
    qos: str | None = Field(None, max_length=200)
    constraint: str | None = Field(None, max_length=500)
    sbatch: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="extra sbatch options, e.g. {exclude = \"node7\"}")
    setup: list[str] = Field(default_factory=list, description="shell lines run before each "
                             "job (module load, source venv/bin/activate)")
    max_requeues: int = Field(3, ge=0, le=100, description="time-limit requeues per job")
    signal_delay_s: int = Field(120, ge=1, le=3600, description="seconds before the time limit "
                                "at which a job is told to checkpoint")
    job_name: str = Field("gantk-sweep", min_length=1, max_length=100)
    folder: str = Field(".submitit", min_length=1, max_length=200,
                        description="submitit's folder (its logs), relative to --out")
    python: str | None = Field(None, max_length=500, description="the interpreter of the jobs "
                               "(default: this one)")


def _write_json(path: Path, data: Any) -> None:
    """Atomically (temp file, fsync, rename): the jobs record survives a kill of the submitter."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _read_jobs(path: Path) -> dict[str, Any]:
    fd = _regular_fd(path, os.O_RDONLY)
    if fd is None:
        return {}
    try:
        with os.fdopen(fd, "rb") as fh:
            data = json.loads(fh.read(16 << 20) or b"{}")
    except (OSError, ValueError):
        return {}  # damaged: jobs are then looked up afresh (a finished run is never rerun)
    return data if isinstance(data, dict) else {}


class Handle:
    """One run's job: submitted now (``job``) or found in the jobs record (``job_id``)."""

    def __init__(self, run: Any, job: Any = None, job_id: str | None = None) -> None:
        self.run, self.job, self.job_id = run, job, job_id


class SubmititLauncher:
    """The launcher object (gantk.sweeping.launch describes the protocol)."""

    detached = True  # jobs outlive `gantk sweep`: `--submit` may hand them over and return

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = max(1, int(jobs))
        self.options = SubmititOptions()
        self.out: Path | None = None
        self._pending: list[Handle] = []
        self._executor: Any = None
        self._record: dict[str, Any] | None = None  # OUT/sweep_jobs.json, read once

    # ------------------------------------------------------------------ settings
    def configure(self, options: dict[str, Any], *, out: Path | None = None) -> None:
        try:
            self.options = SubmititOptions.model_validate(options)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise SpecError("; ".join(f"launcher.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                      for e in exc.errors()), where=f"launcher.{key}",
                            fix="correct the [launcher] table (or --set launcher.KEY=VALUE); "
                                "docs/sweeps.md, 'SLURM', lists every key.") from None
        if self.cluster == "slurm" and shutil.which("sbatch") is None:
            raise PluginError("launcher.cluster = \"slurm\" but there is no sbatch here",
                              where="launcher.cluster",
                              fix="run gantk sweep on a SLURM login node, or use cluster = "
                                  "\"local\" to run the jobs as local processes.")
        self.out = Path(out) if out is not None else None

    @property
    def cluster(self) -> str:
        if self.options.cluster != "auto":
            return self.options.cluster
        return "slurm" if shutil.which("sbatch") else "local"

    @property
    def slots(self) -> int:
        # SLURM queues the whole array and runs array_parallelism of it; local jobs are
        # processes here, so at most that many are handed over at once
        return self.options.array_parallelism if self.cluster == "local" else 1_000_000

    @property
    def nproc(self) -> int:
        return self.options.nproc_per_node or max(1, self.options.gpus_per_task)

    def _folder(self) -> Path:
        if self.out is None:
            raise PluginError("the submitit launcher was not told the sweep directory",
                              where="launcher", fix="run it through gantk sweep --out DIR.")
        return self.out / self.options.folder

    def executor(self) -> Any:
        if self._executor is not None:
            return self._executor
        import submitit

        o = self.options
        folder = self._folder()
        if self.cluster == "local":
            ex = submitit.LocalExecutor(folder, max_num_timeout=o.max_requeues, python=o.python)
            ex.update_parameters(timeout_min=o.time_min, gpus_per_node=o.gpus_per_task,
                                 tasks_per_node=1, nodes=1, signal_delay_s=o.signal_delay_s,
                                 **({"setup": list(o.setup)} if o.setup else {}))
        else:
            try:
                ex = submitit.SlurmExecutor(folder, max_num_timeout=o.max_requeues,
                                            **({"python": o.python} if o.python else {}))
            except RuntimeError as exc:  # no srun here
                raise PluginError(f"submitit cannot submit to SLURM from here: {exc}",
                                  where="launcher.cluster",
                                  fix="run gantk sweep on a SLURM login node, or use cluster = "
                                      "\"local\".") from None
            params: dict[str, Any] = {
                "job_name": o.job_name, "time": max(1, int(round(o.time_min))), "nodes": 1,
                "ntasks_per_node": 1, "cpus_per_task": o.cpus_per_task,
                "signal_delay_s": o.signal_delay_s, "array_parallelism": o.array_parallelism,
                "setup": list(o.setup), "additional_parameters": dict(o.sbatch)}
            if o.gpus_per_task:
                params["gpus_per_node"] = o.gpus_per_task
            for key in ("partition", "account", "qos", "constraint"):
                if getattr(o, key):
                    params[key] = getattr(o, key)
            if o.mem_gb:
                params["mem"] = f"{int(o.mem_gb * 1024)}MB"
            ex.update_parameters(**params)
        self._executor = ex
        return ex

    # ------------------------------------------------------------------ the jobs record
    def _record_path(self) -> Path:
        assert self.out is not None
        return self.out / JOBS_FILE

    def _key(self, run: Any) -> str:
        return f"{Path(run.dir).parent.name}/{Path(run.dir).name}"

    def _records(self) -> dict[str, Any]:
        if self._record is None:
            self._record = _read_jobs(self._record_path())
            if not isinstance(self._record.get("runs"), dict):
                self._record["runs"] = {}
        return self._record

    def recorded(self, run: Any) -> dict[str, Any] | None:
        entry = self._records()["runs"].get(self._key(run))
        return entry if isinstance(entry, dict) and isinstance(entry.get("job_id"), str) else None

    def state(self, job_id: str, cluster: str) -> str:
        """A recorded job's state: RUNNING, PENDING, ... or FINISHED / UNKNOWN."""
        if cluster == "local":  # the job id is the pid of submitit's local controller
            try:
                cmdline = Path(f"/proc/{int(job_id)}/cmdline").read_bytes()
            except (OSError, ValueError):
                cmdline = b""
            if not cmdline and sys.platform != "linux":  # pragma: no cover - no /proc
                try:
                    os.kill(int(job_id), 0)
                    return "RUNNING"
                except (OSError, ValueError):
                    return "FINISHED"
            return "RUNNING" if b"submitit" in cmdline else "FINISHED"
        import submitit

        return str(submitit.SlurmJob(self._folder(), job_id).state).upper()

    def describe(self, run: Any) -> str | None:
        """For ``gantk sweep --status``: the run's recorded job and its state."""
        entry = self.recorded(run)
        if entry is None:
            return None
        state = self.state(entry["job_id"], entry.get("cluster", self.cluster))
        return (f"{entry.get('cluster', '?')} job {entry['job_id']} {state} (submitted "
                f"{entry.get('submitted', '?')}, {entry.get('submissions', 1)} submission(s))")

    # ------------------------------------------------------------------ the protocol
    def start(self, run: Any) -> Handle:
        entry = self.recorded(run)
        if entry is not None and entry.get("cluster") == self.cluster and \
                self.state(entry["job_id"], self.cluster) not in ENDED:
            return Handle(run, job_id=entry["job_id"])  # still queued or running: attach
        handle = Handle(run)
        self._pending.append(handle)
        return handle

    def flush(self) -> None:
        """Submit the runs started since the last flush, as one job array."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        ex = self.executor()
        with ex.batch():
            for h in pending:
                command = list(h.run.command)
                if self.options.python:  # the jobs' interpreter runs the worker too
                    command[0] = self.options.python
                h.job = ex.submit(RunJob(command, str(h.run.dir), self.nproc))
        path = self._record_path()
        self._record = None  # another process may have written it since
        record = self._records()
        runs = record["runs"]
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        for h in pending:
            h.job_id = str(h.job.job_id)
            old = runs.get(self._key(h.run)) or {}
            runs[self._key(h.run)] = {"job_id": h.job_id, "cluster": self.cluster,
                                      "submitted": now,
                                      "submissions": int(old.get("submissions", 0)) + 1,
                                      "folder": self.options.folder}
        _write_json(path, record)

    def poll(self, handle: Handle) -> int | None:
        if handle.job is None and handle.job_id is None:
            self.flush()
        if handle.job is not None:
            if not handle.job.done():
                return None
        elif self.state(str(handle.job_id), self.cluster) not in ENDED:
            return None
        return _outcome(Path(handle.run.dir))

    def stop(self, handle: Handle) -> None:
        """Nothing: the jobs outlive an interrupted `gantk sweep` (``detached``), which only
        stops watching them; the next call attaches to them again. ``scancel`` stops them."""
        if handle.job is None and handle.job_id is None:  # not yet handed over: do so now
            self.flush()
