"""The submitit launcher (issue 31), through submitit's own code: its LocalExecutor runs the
jobs as local processes (the same pickled job, signal handlers, checkpoint and requeue code
paths as on SLURM), and its SlurmExecutor writes the sbatch script a cluster would get."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

submitit = pytest.importorskip("submitit")

from gantk_plugins.launchers.runjob import RunJob  # noqa: E402
from gantk_plugins.launchers.slurm import SubmititLauncher  # noqa: E402

from test_sweep import RING, sweep_dict  # noqa: E402
from proc_helpers import worker_pid  # noqa: E402


def _write(tmp_path: Path, launcher: dict | str, **kw) -> Path:
    import tomli_w

    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(sweep_dict(launcher=launcher, **kw)))
    return path


# ---------------------------------------------------------------- settings (fast)
def test_launcher_settings_are_checked_and_settable_from_the_command_line(cli, tmp_path):
    path = _write(tmp_path, {"name": "submitit", "cluster": "local", "gpus_per_task": -1})
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--status")
    assert code == 2 and "launcher.gpus_per_task" in err and "docs/sweeps.md" in err
    code, out, err = cli("sweep", path, "--out", tmp_path / "out", "--status",
                         "--set", "launcher.gpus_per_task=0")
    assert code == 0 and "not started" in out, err
    path = _write(tmp_path, {"name": "submitit", "cluster": "local", "partitoin": "gpu"})
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--status")
    assert code == 2 and "launcher.partitoin" in err
    path = _write(tmp_path, {"name": "local", "partition": "gpu"})
    code, _, err = cli("sweep", path, "--out", tmp_path / "out")
    assert code == 2 and "local launcher takes no settings" in err
    path = _write(tmp_path, "local")
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--submit")
    assert code == 2 and "cannot be submitted and left" in err


def test_the_sbatch_script_carries_every_slurm_setting(tmp_path, monkeypatch):
    """What a cluster receives, written by submitit's SlurmExecutor from the [launcher] table."""
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")  # as on a login node
    launcher = SubmititLauncher(jobs=4)
    launcher.configure({"cluster": "slurm", "partition": "gpu", "time_min": 90,
                        "gpus_per_task": 2, "cpus_per_task": 8, "mem_gb": 32,
                        "array_parallelism": 5, "account": "lab", "qos": "high",
                        "sbatch": {"exclude": "node7"}, "setup": ["module load cuda"],
                        "signal_delay_s": 180}, out=tmp_path)
    ex = launcher.executor()
    text = ex._make_submission_file_text("python -m submitit.core._submit X", "uid")
    for line in ("--partition=gpu", "--time=90", "--gpus-per-node=2", "--cpus-per-task=8",
                 "--mem=32768MB", "--account=lab", "--qos=high", "--exclude=node7",
                 "--signal=USR2@180", "--ntasks-per-node=1", "module load cuda"):
        assert line in text, line
    assert ex.parameters["array_parallelism"] == 5
    assert launcher.slots > 10_000  # SLURM throttles the array, not gantk
    job = RunJob(["/py", "-m", "gantk.sweep_worker", "/out/c/seed_0"], "/out/c/seed_0",
                 launcher.nproc)
    assert job.argv() == ["/py", "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=2", "-m", "gantk.sweep_worker", "/out/c/seed_0"]


FAKE_WORKER = """
import os, signal, sys, time, pathlib
d = pathlib.Path(sys.argv[1]); n = d / "attempts"
k = int(n.read_text()) + 1 if n.exists() else 1
n.write_text(str(k))
if k == 1:  # the first attempt trains until it is told to stop, saves, and exits 130
    got = []
    signal.signal(signal.SIGTERM, lambda *a: got.append(1))
    (d / "ready").write_text("1")
    while not got:
        time.sleep(0.05)
    time.sleep(0.5)  # a second signal would arrive here
    (d / "saved").write_text(str(len(got)))
    sys.exit(130)
(d / "resumed").write_text("1")
"""


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_a_preempted_job_stops_its_worker_once_and_is_requeued(tmp_path):
    """SIGUSR2 (SLURM's warning before a time limit or preemption) to the job: submitit calls
    RunJob.checkpoint, which stops the worker with one SIGTERM; the job is requeued and runs the
    worker again (which resumes)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    ex = submitit.LocalExecutor(tmp_path / "sub", max_num_timeout=3)
    ex.update_parameters(timeout_min=10, signal_delay_s=5)
    job = ex.submit(RunJob([sys.executable, "-c", FAKE_WORKER, str(run_dir)], str(run_dir)))
    _wait_for(lambda: (run_dir / "ready").exists(), 60, "the worker")
    (task,) = _children(int(job.job_id))  # submitit's process running RunJob
    os.kill(task, signal.SIGUSR2)
    _wait_for(lambda: (run_dir / "resumed").exists(), 60, "the requeued job")
    _wait_for(job.done, 30, "the job to end")
    assert (run_dir / "saved").read_text() == "1"  # stopped once, by one signal
    assert (run_dir / "attempts").read_text() == "2"
    assert "Requeued" in (job.stderr() or "") + (job.stdout() or "")


# ---------------------------------------------------------------- a real sweep (slow)
LONG_RING = {**RING, "train": {"steps": 1500, "batch_size": 32, "log_every": 50,
                               "sample_every": 0, "ckpt_every": 100}}


def _summary_values(out: Path) -> dict:
    data = json.loads((out / "summary.json").read_text())
    return {c["cell"]: {k: v["values"] for k, v in c["metrics"].items()} for c in data["cells"]}


def _steps(run: Path) -> int:
    try:
        rows = (run / "metrics.jsonl").read_text().splitlines()
        return json.loads(rows[-1])["step"] if rows else 0
    except (OSError, ValueError, IndexError):
        return 0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_submit_kill_preempt_resume_and_the_same_summary_as_the_local_launcher(cli, tmp_path):
    axes = {"method": {"plain": [], "msgan": ['stack="backbone=mlp + loss=ns + data=ring '
                                              '+ msgan"']}}
    local = _write(tmp_path, "local", stack=LONG_RING, axes=axes, seeds=[0], threads=1)
    code, _, err = cli("sweep", local, "--out", tmp_path / "local", "--jobs", "2")
    assert code == 0, err
    (tmp_path / "slurm").mkdir()
    path = _write(tmp_path / "slurm", {"name": "submitit", "cluster": "local", "time_min": 30},
                  stack=LONG_RING, axes=axes, seeds=[0], threads=1)
    out = tmp_path / "out"
    t0 = time.monotonic()
    code, stdout, err = cli("sweep", path, "--out", out, "--submit")
    assert code == 0 and "submitted 2 run(s)" in stdout, err
    assert time.monotonic() - t0 < 60  # returned once submitted, not when done
    record = json.loads((out / "sweep_jobs.json").read_text())["runs"]
    assert set(record) == {"method=plain/seed_0", "method=msgan/seed_0"}
    plain, msgan = out / "method=plain" / "seed_0", out / "method=msgan" / "seed_0"
    _wait_for(lambda: _steps(plain) >= 300 and _steps(msgan) >= 300, 240, "training")
    code, stdout, _ = cli("sweep", path, "--out", out, "--status")
    assert code == 0 and "running" in stdout and "2 running" in stdout, stdout
    # a killed job (kill -9 of its worker: a node lost) and a preempted one (SIGUSR2 to its job)
    os.kill(worker_pid(plain), signal.SIGKILL)
    job_id = int(record["method=msgan/seed_0"]["job_id"])
    (task,) = _children(job_id)
    os.kill(task, signal.SIGUSR2)
    plain_job = record["method=plain/seed_0"]["job_id"]

    def ended() -> bool:  # the killed run's job has ended (its controller is gone)
        try:
            return b"submitit" not in Path(f"/proc/{plain_job}/cmdline").read_bytes()
        except OSError:
            return True

    _wait_for(ended, 60, "the killed job to end")
    code, stdout, _ = cli("sweep", path, "--out", out, "--status")
    assert "method=plain" in stdout and "stopped" in stdout, stdout
    # the next `gantk sweep` resubmits the killed run and waits for both
    code, stdout, err = cli("sweep", path, "--out", out)
    assert code == 0, err
    record = json.loads((out / "sweep_jobs.json").read_text())["runs"]
    assert record["method=plain/seed_0"]["submissions"] == 2
    assert record["method=msgan/seed_0"]["submissions"] == 1  # requeued by submitit itself
    for run in (plain, msgan):
        log = (run / "sweep.log").read_text()
        assert "resuming" in log and "from step" in log, log[-2000:]
        steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert steps == sorted(set(steps)) and steps[-1] == 1500  # no step logged twice
    assert "stopped by SIGTERM" in (msgan / "sweep.log").read_text()
    assert _summary_values(out) == _summary_values(tmp_path / "local")


@pytest.mark.slow
def test_a_job_of_two_processes_trains_its_run_under_torchrun(tmp_path):
    """nproc_per_node = 2 (two GPUs of one job on a cluster; gloo on the CPU here): rank 0 holds
    and writes the run, every step is logged once."""
    from gantk.sweeping.sweeps import Sweep, write_job

    sw = Sweep.from_dict(sweep_dict(axes={}, seeds=[0]))
    run = sw.runs(tmp_path)[0]
    write_job(run, sw.base, sw.spec.eval, threads=1)
    assert RunJob(run.command, str(run.dir), nproc=2)() == 0
    result = json.loads((run.dir / "sweep_result.json").read_text())
    assert result["step"] == 6 and result["modes_total"] == 8.0
    steps = [json.loads(x)["step"] for x in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert (run.dir / "sweep.log").read_text().count("finished:") == 2  # both ranks evaluated
