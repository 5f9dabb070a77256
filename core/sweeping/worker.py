"""One sweep run in its own process: ``python -m gantk.sweep_worker RUN_DIR`` (this module's old
name, which :func:`gantk.store.jobfiles.worker_command` keeps so ``pgrep -f sweep_worker`` finds it).

Reads ``RUN_DIR/sweep_job.json`` (written by :func:`gantk.sweeping.jobs.write_job`), trains the stack into
RUN_DIR (resuming from its checkpoints), evaluates it with the sweep's metrics, appends the result
to ``eval.jsonl`` and writes ``sweep_result.json`` last (atomically), which marks the run finished.
A job with ``train_run`` (a cell declared ``train_as`` another) trains nothing: it loads that run's
final checkpoint (``OUT/CELL/seed_S``, a sibling of RUN_DIR's cell) and evaluates it with the job's
sampling transforms. A failure writes ``sweep_error.txt`` (one paragraph) and exits with status 2.
SIGTERM (the sweep stopping, or a user pausing this one run) saves a checkpoint at the next step
boundary and exits with status 130, so the next call resumes from there; during the evaluation it
stops at once, also with 130 (the next call evaluates again). Every file is written through
:mod:`gantk.base.safeio` (atomic and fsynced: the "finished" mark survives a power cut).

Its imports are absolute: run as ``-m gantk.sweep_worker`` the code executes as ``__main__`` of
the package ``gantk``, where relative imports would resolve from the wrong folder.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if threading.current_thread() is not threading.main_thread():
        return _locked(Path(argv[0]))

    def stop(signum: int, frame: object) -> None:  # outside training: stop now
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, stop)  # training defers it to a step boundary
    try:
        parent = os.environ.pop("GANTK_SWEEP_PARENT", None)  # PARENT_ENV of the local launcher
        if parent and not _die_with(int(parent)):
            print("the sweep that started this run has ended; not starting", file=sys.stderr)
            return 130
        return _locked(Path(argv[0]))
    except KeyboardInterrupt:  # a signal before the run began (or after it ended)
        return 130
    finally:
        signal.signal(signal.SIGTERM, old)


def _die_with(parent: int) -> bool:
    """End this worker (one SIGTERM: a checkpoint at the next step) when the sweep process
    ``parent`` dies, even by ``kill -9``: ``PR_SET_PDEATHSIG`` on Linux, a watchdog thread
    elsewhere. False when the parent has already gone."""

    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
            return os.getppid() == parent  # it may have died before prctl
        except (OSError, AttributeError):  # pragma: no cover - no prctl: fall back to the watchdog
            pass

    def watch() -> None:  # pragma: no cover - not Linux
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    if os.getppid() != parent:
        return False
    threading.Thread(target=watch, name="gantk-sweep-parent-watchdog", daemon=True).start()
    return True


def _locked(run_dir: Path) -> int:
    """Run the job holding ``RUN_DIR/.sweep_worker.lock``: a second worker for the same run (a
    worker left by a killed sweep still going) exits with 75 and writes nothing."""

    from gantk.base.errors import GantkError
    from gantk.sweeping.runfiles import WORKER_LOCK, held_lock

    if not _main_rank():  # under torchrun (a job of several GPUs) rank 0 holds the run
        return _run(run_dir)
    try:
        with held_lock(run_dir, WORKER_LOCK, doing="is already running this run",
                       fix="wait for it to end; the sweep resumes this run afterwards."):
            return _run(run_dir)
    except GantkError as exc:  # the lock is held, or cannot be taken
        print(f"error: {exc.paragraph()}", file=sys.stderr)
        return 75 if "is already running" in exc.message else 2


def _main_rank() -> bool:
    """Rank 0 of a torchrun job, or a single process: the one that writes the run's files."""
    return os.environ.get("RANK", "0") == "0"


def _run(run_dir: Path) -> int:
    from gantk.base.safeio import atomic_write as _write
    from gantk.store.jobfiles import ERROR_FILE, JOB_FILE, RESULT_FILE
    from gantk.sweeping.runfiles import read_json_file
    from gantk.sweeping.sweepfile import MAX_THREADS

    def atomic_write(path: Path, text: str) -> None:
        if _main_rank():
            _write(path, text)

    if read_json_file(run_dir / RESULT_FILE)[0] is not None:  # a second job for a finished run
        print("finished already: nothing to do")
        return 0
    job, why = read_json_file(run_dir / JOB_FILE)
    if job is None:
        text = (f"SweepError: {run_dir / JOB_FILE}: the job file is "
                f"{'missing' if why is None else 'damaged: ' + why}. Fix: run the sweep command "
                "again, which rewrites it.")
        atomic_write(run_dir / ERROR_FILE, text + "\n")
        print(f"error: {text}", file=sys.stderr)
        return 2
    try:
        threads = min(max(1, int(job.get("threads") or 1)), MAX_THREADS, os.cpu_count() or 1)
    except (TypeError, ValueError):
        threads = 1
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
        from gantk.base.errors import GantkError
        from gantk.facade.pipeline import Pipeline
        from gantk.metrics.evaluate import record_eval
        from gantk.train.signals import Interrupted

        try:
            train_run = job.get("train_run")
            if train_run:
                from gantk.sweeping.jobs import load_train_run

                pipe = load_train_run(run_dir, train_run)
            else:
                pipe = Pipeline.from_spec(job["base"], job["overrides"])
                pipe.train(out=run_dir, progress=False)
            ev = job["eval"]
            result = pipe.evaluate(ev["metrics"] or None, n=ev["n"], with_=ev["with"] or None,
                                   options=ev["options"] or None, feature_net=ev["feature_net"],
                                   seed=ev["seed"])
            if _main_rank():
                record_eval(run_dir, result, step=pipe.step, metrics=ev["metrics"] or None,
                            source="sweep", **{"with": pipe.sample_transforms(ev["with"] or None)})
            result = {**result, "step": pipe.step, "cell": job["cell"], "seed": job["seed"]}
            if train_run:
                result["train_run"] = train_run
            atomic_write(run_dir / RESULT_FILE, json.dumps(result, indent=2, allow_nan=True))
            print(f"finished: {result}")
            return 0
        except Interrupted as exc:  # stopped by the sweep (SIGTERM): a checkpoint was saved
            print(f"stopped: {exc.paragraph()}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:  # a signal outside training (loading, evaluating)
            print("stopped by a signal before the run's result was written; the same sweep "
                  "command resumes it (training from its last checkpoint, then the evaluation)",
                  file=sys.stderr)
            return 130
        except GantkError as exc:
            atomic_write(run_dir / ERROR_FILE, f"{type(exc).__name__}: {exc.paragraph()}\n")
            print(f"error: {exc.paragraph()}", file=sys.stderr)
            return 2
    except Exception as exc:  # a crash in a plugin: report it, keep the sweep going
        atomic_write(run_dir / ERROR_FILE, f"{type(exc).__name__}: {exc} (traceback in "
                                           f"{run_dir / 'sweep.log'})\n")
        traceback.print_exc()
        return 2


if __name__ == "__main__":
    sys.exit(main())
