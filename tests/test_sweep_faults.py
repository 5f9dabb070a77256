"""Sweeps under faults (issue 30): folder names, planted files, damaged files, held run
directories, a killed or interrupted sweep parent, and limits checked before anything runs."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest

from gantk import GantkError
from gantk.sweeping.sweeps import ERROR_FILE, JOB_FILE, RESULT_FILE, SWEEP_LOCK, Sweep, SweepError

from test_sweep import RING, FakeLauncher, sweep_dict
from proc_helpers import worker_pid


@pytest.fixture
def alarm():
    """A hang (a FIFO opened for reading or writing) fails the test instead of stalling CI."""

    def fired(signum, frame):
        raise TimeoutError("the sweep hung")

    old = signal.signal(signal.SIGALRM, fired)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- folder names
def test_cell_names_that_slug_alike_get_distinct_folders(tmp_path):
    """"fast lr" and "fast_lr", α and β, "" and "_" once shared one run directory, and the table
    showed the same run for both cells."""
    sw = Sweep.from_dict(sweep_dict(axes={"v": ["fast lr", "fast_lr", "α", "β", "", "_"]},
                                    set=[], seeds=[0]))
    runs = sw.runs(tmp_path)
    assert len({r.dir for r in runs}) == 6
    assert runs[1].dir.parent.name == "v=fast_lr"  # a plain name keeps its folder
    assert runs[4].dir.parent.name == "v="
    assert all("~" in r.dir.parent.name for r in runs if r.cell not in ("v=fast_lr", "v="))

    names = [c for c, _ in sw.cells()]

    class Named(FakeLauncher):
        def start(self, run):  # each run writes a score that says which cell it is
            self.started.append((run.cell, run.seed))
            (run.dir / RESULT_FILE).write_text(json.dumps(
                {"modes_covered": float(names.index(run.cell))}))
            return 0

    s = sw.run(tmp_path, launcher=Named(), validate=False)
    assert [c.stats["modes_covered"]["mean"] for c in s.cells] == [0, 1, 2, 3, 4, 5]


def test_folder_names_of_plain_cells_are_unchanged_and_case_twins_refused():
    from gantk.sweeping.sweepfile import slug

    assert slug("method=msgan,train.lr_g=0.0002") == "method=msgan__train.lr_g=0.0002"
    assert slug("method=a,b") != slug("method=a__b")
    assert len(slug("v=" + "x" * 400)) <= 120
    with pytest.raises(SweepError, match="share the run folder") as err:
        Sweep.from_dict(sweep_dict(axes={"method": {"Plain": [], "plain": []}}))
    assert "rename one" in err.value.paragraph()


# ---------------------------------------------------------------- limits at --check
def _cli_check(cli, tmp_path, **kw):
    import tomli_w

    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(sweep_dict(**kw)))
    return path, cli("sweep", path, "--out", tmp_path / "out", "--check")


@pytest.mark.parametrize("kw, words", [
    ({"seeds": [0, 0]}, "appear twice"),
    ({"seeds": [-1]}, "between 0 and"),
    ({"threads": 100000}, "threads"),
])
def test_bad_seeds_and_threads_are_refused_at_check(cli, tmp_path, kw, words):
    _, (code, out, err) = _cli_check(cli, tmp_path, **kw)
    assert code == 2 and words in err and "Traceback" not in err


def test_seeds_on_the_command_line_are_checked_and_capped(cli, tmp_path):
    path, (code, _, _) = _cli_check(cli, tmp_path)
    assert code == 0
    t0 = time.monotonic()
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--check", "--seeds", "0-2000000")
    assert code == 2 and "2,000,001 seeds" in err and time.monotonic() - t0 < 30
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--check", "--seeds", "-3")
    assert code == 2 and "out of range" in err
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--check", "--seeds", "0,1-3,1")
    assert code == 2 and "1 seed(s) more than once" in err
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--check", "--jobs", "100000")
    assert code == 2 and "--jobs" in err


def test_the_worker_caps_its_threads_at_the_cores_it_has(tmp_path):
    import torch

    from gantk.sweeping.sweeps import write_job
    from gantk.sweeping.worker import main as worker

    sw = Sweep.from_dict(sweep_dict(axes={}, seeds=[0], set=["train.steps=2"]))
    run = sw.runs(tmp_path)[0]
    write_job(run, sw.base, sw.spec.eval, threads=1)
    job = json.loads((run.dir / JOB_FILE).read_text())
    (run.dir / JOB_FILE).write_text(json.dumps({**job, "threads": 100000}))
    before = torch.get_num_threads()
    try:
        assert worker([str(run.dir)]) == 0
        assert torch.get_num_threads() <= (os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)


def test_check_of_10000_cells_builds_once_per_structure_and_keeps_none(tmp_path, monkeypatch):
    """10,000 cells took 81 s and 1.2 GB: every cell's networks were built and kept."""
    from gantk.facade.pipeline import Pipeline

    alive: weakref.WeakSet = weakref.WeakSet()
    built, most = [], [0]
    real = Pipeline.__init__

    def counting(self, *a, **k):
        real(self, *a, **k)
        built.append(1)
        alive.add(self)
        most[0] = max(most[0], len(alive))

    monkeypatch.setattr(Pipeline, "__init__", counting)
    sw = Sweep.from_dict(sweep_dict(axes={"train.lr_g": [1e-5 * (i + 1) for i in range(5000)],
                                          "backbone.hidden": [[16, 16], [8]]}, set=[]))
    assert len(sw.plan()) == 10000
    sw.validate()
    assert len(built) == 2 and most[0] == 1
    bad = Sweep.from_dict(sweep_dict(axes={"train.lr_g": [1e-5 * (i + 1) for i in range(30)] +
                                           [20.0]}))
    with pytest.raises(SweepError, match="cell 'train.lr_g=20.0'"):
        bad.validate()


# ---------------------------------------------------------------- damaged and planted files
def test_a_torn_result_does_not_block_the_summary_and_is_evaluated_again(tmp_path):
    sw = Sweep.from_dict(sweep_dict(axes={"method": {"plain": [], "b": []}}))
    sw.run(tmp_path, launcher=FakeLauncher(), validate=False)
    torn = sw.runs(tmp_path)[3]  # method=b seed 1
    (torn.dir / RESULT_FILE).write_text('{"modes_covered": 1')
    s = sw.summarize(tmp_path)
    assert s.row("method=b").stats["modes_covered"]["n"] == 2
    assert any(str(torn.dir / RESULT_FILE) in n and "evaluates them again" in n for n in s.notes)
    again = FakeLauncher()
    sw.run(tmp_path, launcher=again, validate=False)
    assert again.started == [("method=b", 1)]


def test_disk_full_while_writing_a_job_file_leaves_no_damaged_job(tmp_path, monkeypatch):
    """A full disk once left a 0-byte sweep_job.json, and the same command then refused the
    sweep as 'made with other settings' and told the user to delete run directories."""
    import gantk.base.safeio as safeio

    real = safeio._write_all

    def full(tmp, payload):
        with open(tmp, "wb") as fh:  # what a full disk leaves: a part of the bytes, then ENOSPC
            fh.write(payload[: len(payload) // 3])
        raise OSError(errno.ENOSPC, "No space left on device")

    sw = Sweep.from_dict(sweep_dict(axes={}, seeds=[0, 1]))
    monkeypatch.setattr(safeio, "_write_all", full)
    launcher = FakeLauncher()
    with pytest.raises(safeio.RunDirError, match="free disk space"):
        sw.run(tmp_path, launcher=launcher, validate=False)
    assert launcher.started == [] and not list(tmp_path.glob("*/seed_*/sweep_job.json"))
    monkeypatch.setattr(safeio, "_write_all", real)
    assert sw.run(tmp_path, launcher=FakeLauncher(), validate=False).row("base").stats


def test_a_damaged_job_file_is_damage_not_other_settings(tmp_path):
    sw = Sweep.from_dict(sweep_dict(axes={}, seeds=[0, 1]))
    runs = sw.runs(tmp_path)
    runs[0].dir.mkdir(parents=True)
    (runs[0].dir / JOB_FILE).write_bytes(b"")  # an unfinished run: rewritten, then run
    launcher = FakeLauncher()
    sw.run(tmp_path, launcher=launcher, validate=False)
    assert ("base", 0) in launcher.started
    assert json.loads((runs[0].dir / JOB_FILE).read_text())["seed"] == 0
    (runs[1].dir / JOB_FILE).write_text('{"base": ')  # a finished run: named as damaged
    with pytest.raises(SweepError) as err:
        sw.run(tmp_path, launcher=FakeLauncher(), validate=False)
    text = err.value.paragraph()
    assert "damaged" in text and "other settings" not in text.split("not a change")[0]
    assert str(runs[1].dir / JOB_FILE) in text and "sweep_result.json" in text


@pytest.mark.parametrize("name", [JOB_FILE, "sweep.log", RESULT_FILE])
def test_a_fifo_in_a_run_directory_is_refused_not_opened(tmp_path, alarm, name):
    sw = Sweep.from_dict(sweep_dict(axes={}, seeds=[0]))
    run = sw.runs(tmp_path)[0]
    run.dir.mkdir(parents=True)
    os.mkfifo(run.dir / name)
    with pytest.raises(SweepError, match="FIFO") as err:
        sw.run(tmp_path, launcher=FakeLauncher(), validate=False)
    assert str(run.dir / name) in err.value.paragraph() and "remove" in err.value.paragraph()
    assert sw.summarize(tmp_path).row("base").pending == [0]  # --summary does not hang either


def test_the_local_launcher_never_opens_a_fifo_log(tmp_path, alarm):
    from gantk.base.safeio import RunDirError
    from gantk.sweeping.launch import LocalLauncher

    run = Sweep.from_dict(sweep_dict(axes={}, seeds=[0])).runs(tmp_path)[0]
    run.dir.mkdir(parents=True)
    os.mkfifo(run.dir / "sweep.log")
    with pytest.raises(RunDirError, match="not a regular file"):
        LocalLauncher().start(run)


def test_a_symlinked_sweep_lock_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "important.txt"
    victim.write_text("IMPORTANT USER DATA")
    out = tmp_path / "out"
    out.mkdir()
    (out / SWEEP_LOCK).symlink_to(victim)
    with pytest.raises(GantkError) as err:
        Sweep.from_dict(sweep_dict(axes={})).run(out, launcher=FakeLauncher(), validate=False)
    assert "symbolic link" in err.value.paragraph() and str(out / SWEEP_LOCK) in err.value.paragraph()
    assert victim.read_text() == "IMPORTANT USER DATA"
    (out / SWEEP_LOCK).unlink()
    (out / SWEEP_LOCK).symlink_to(tmp_path / "dangling")
    with pytest.raises(GantkError):
        Sweep.from_dict(sweep_dict(axes={})).run(out, launcher=FakeLauncher(), validate=False)
    assert not (tmp_path / "dangling").exists()


# ---------------------------------------------------------------- runs held by another process
def test_a_restarted_sweep_never_touches_a_run_another_process_holds(tmp_path):
    """After a kill -9 of the sweep, its workers trained on; the next sweep counted them failed,
    wrote sweep_error.txt into their directories and ran twice as many processes as --jobs."""
    from gantk.sweeping.runfiles import WORKER_LOCK

    sw = Sweep.from_dict(sweep_dict(axes={}, seeds=[0, 1]))
    held = sw.runs(tmp_path)[0]
    held.dir.mkdir(parents=True)
    holder = subprocess.Popen(  # a worker left running: holds the run's lock for 4 s
        [sys.executable, "-c", "import os, sys, time\n"
         "from gantk.sweeping.runfiles import held_lock\n"
         f"d = {str(held.dir)!r}\n"
         f"with held_lock(d, {WORKER_LOCK!r}, doing='x', fix='y'):\n"
         "    print('held', flush=True); time.sleep(4)\n"
         f"    print('job' if os.path.exists(os.path.join(d, {JOB_FILE!r})) else 'none',"
         " flush=True)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        events: list[str] = []

        class OneSlot(FakeLauncher):
            slots = 1

        launcher = OneSlot()
        sw.run(tmp_path, launcher=launcher, validate=False, on_event=events.append)
        assert holder.stdout.readline().strip() == "none"  # nothing written while it was held
    finally:
        holder.kill()
        holder.wait()
    assert any(f"pid {holder.pid}" in e and "waiting for it" in e for e in events)
    # the one slot was the held run's until it was freed: then it resumed, then seed 1 ran
    assert launcher.started == [("base", 0), ("base", 1)]
    assert not (held.dir / ERROR_FILE).exists()
    waited = next(i for i, e in enumerate(events) if "waiting for it" in e)
    assert "1 running" in events[waited]


# ---------------------------------------------------------------- the sweep parent and its workers
SLOW_RING = {**RING, "train": {"steps": 100000, "batch_size": 32, "log_every": 1,
                               "sample_every": 0, "ckpt_every": 0}}


def _start_sweep(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    import tomli_w

    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(sweep_dict(stack=SLOW_RING, axes={}, seeds=[0], threads=1)))
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    parent = subprocess.Popen([sys.executable, "-c", "import sys; from gantk.cli.entry import main; "
                               "sys.exit(main())", "sweep", str(path),
                               "--out", str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env=env, start_new_session=True)
    run = out / "base" / "seed_0"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the worker trains (a few rows logged)
        rows = run / "metrics.jsonl"
        if rows.exists() and rows.read_text().count("\n") >= 3:
            return parent, run
        time.sleep(0.2)
    parent.kill()
    pytest.fail("the worker did not start training within 120 s")


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_kill_9_of_the_sweep_takes_its_workers_with_it(tmp_path):
    parent, run = _start_sweep(tmp_path)
    worker = worker_pid(run)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    gone = _wait_gone(worker, 60)
    if not gone:
        os.kill(worker, signal.SIGKILL)
    assert gone, "the worker trained on as an orphan"
    log = (run / "sweep.log").read_text()
    assert "stopped by SIGTERM" in log  # it saved a checkpoint first
    assert list((run / "checkpoints").glob("*.safetensors"))


@pytest.mark.slow
def test_ctrl_c_reaches_each_worker_once_and_it_saves_a_checkpoint(tmp_path):
    """SIGINT to the sweep's process group once reached the worker too, and the parent's SIGTERM
    then read as a second signal: the worker exited without a checkpoint (3 of 3 trials)."""
    parent, run = _start_sweep(tmp_path)
    worker = worker_pid(run)
    os.killpg(parent.pid, signal.SIGINT)  # the terminal's Ctrl-C
    out, _ = parent.communicate(timeout=120)
    assert _wait_gone(worker, 30)
    log = (run / "sweep.log").read_text()
    assert log.count("saving a checkpoint at the end of this step") == 1, log
    assert "stopped by SIGTERM" in log and "before the run's result" not in log
    assert list((run / "checkpoints").glob("*.safetensors"))
    assert parent.returncode == 130, out.decode(errors="replace")[-2000:]


# ---------------------------------------------------------------- --status
def test_status_says_where_every_run_stands(cli, tmp_path):
    import tomli_w

    from gantk.sweeping.runfiles import WORKER_LOCK

    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(sweep_dict(axes={}, seeds=[0, 1, 2, 3, 4])))
    out = tmp_path / "out"
    runs = Sweep.from_file(path).runs(out)
    for r in runs[:4]:
        r.dir.mkdir(parents=True)
    (runs[0].dir / RESULT_FILE).write_text(json.dumps({"modes_covered": 1.0, "step": 6}))
    (runs[1].dir / ERROR_FILE).write_text("TrainingError: boom\nmore\n")
    (runs[2].dir / "metrics.jsonl").write_text('{"step": 1}\n{"step": 3}\n{"ste')
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom gantk.sweeping.runfiles import held_lock\n"
         f"with held_lock({str(runs[3].dir)!r}, {WORKER_LOCK!r}, doing='x', fix='y'):\n"
         "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, text, err = cli("sweep", path, "--out", out, "--status")
    finally:
        holder.kill()
        holder.wait()
    assert code == 0, err
    rows = {line.split("│")[2].strip(): line for line in text.splitlines() if line.count("│") > 4}
    assert "finished" in rows["0"] and "6" in rows["0"]
    assert "failed" in rows["1"] and "boom" in rows["1"]
    assert "stopped" in rows["2"] and "3" in rows["2"] and "resumes" in rows["2"]
    assert "running" in rows["3"] and f"pid {holder.pid}" in rows["3"]
    assert "not started" in rows["4"]
    assert "1 finished, 1 running, 1 failed, 1 stopped, 1 not started of 5 run(s)" in text


def test_a_sweep_into_a_folder_gantk_did_not_make_is_refused_and_nothing_changes(tmp_path):
    """--out at someone's non-empty folder: refused before any run folder or job file is written;
    an empty folder, a marked sweep and a sweep made before the marker are taken."""
    sw = Sweep.from_dict(sweep_dict(seeds=[0]))
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"not gantk's")
    with pytest.raises(GantkError) as err:
        sw.run(foreign, launcher=FakeLauncher(), validate=False)
    assert ".gantk-sweep" in err.value.paragraph() and str(foreign) in err.value.paragraph()
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"]

    out = tmp_path / "sweep"
    sw.run(out, launcher=FakeLauncher(), validate=False)
    assert (out / ".gantk-sweep").is_file()
    (out / ".gantk-sweep").unlink()  # as a sweep directory of an earlier version left it
    (out / "summary.json").unlink()
    sw.run(out, launcher=FakeLauncher(), validate=False)  # recognised by its run folders' job files
    assert (out / ".gantk-sweep").is_file()
