"""Fault injection: a kill at every write (torn rows included), signals, non-finite weights, and
the log-replay rule (after any kill/resume sequence metrics.jsonl equals the uninterrupted run's)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gantk.base.safeio as safeio
from gantk import Pipeline, TrainingError, hookimpl, temporary_plugin
from gantk.store.checkpoint import Checkpoint
from gantk.store.rundirs import list_checkpoints
from gantk.train.signals import Interrupted, deferred_stop

WALL_CLOCK = {"time", "it_per_s"}  # the only fields that may differ between two runs


class Killed(BaseException):
    """Stands for SIGKILL: nothing in gantk catches it, no cleanup is owed."""


def _spec(ring_spec: dict, steps: int = 12) -> dict:
    # log_every not a multiple of ckpt_every: the log window must travel in checkpoints
    ring_spec["train"].update(steps=steps, log_every=5, ckpt_every=4, keep_checkpoints=2)
    return ring_spec


def _rows(run: Path) -> list[dict]:
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in rows]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    c = Checkpoint(list_checkpoints(run)[-1][1])
    return {k: v for k, v in c.tensors.items() if k.startswith("model.")}


@pytest.fixture
def reference(ring_spec, tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    Pipeline.from_spec(_spec(ring_spec)).train(out=run, progress=False)
    return run


class Injector:
    """Counts every landing write (a rename of a rewritten file, a log append) and kills the
    process at the ``at``-th, leaving what SIGKILL leaves: the temp file of a rewrite (torn: half
    of it) or, for ``torn`` appends, half a row."""

    def __init__(self, monkeypatch, at: int | None, *, torn: bool = False) -> None:
        self.at, self.torn, self.n, self.kinds = at, torn, 0, []
        commit, append = safeio._commit, safeio._append

        def _commit(tmp, path):
            if self.n + 1 == self.at:  # SIGKILL runs no cleanup: a (torn) temp file stays
                data = Path(tmp).read_bytes()
                Path(tmp).with_name(Path(tmp).name[:-4] + "k.tmp").write_bytes(
                    data[: len(data) // 2] if self.torn else data)
            self.tick("rewrite")
            commit(tmp, path)

        def _append(fd, payload):
            if self.n + 1 == self.at and self.torn:
                os.write(fd, payload[: len(payload) // 2])
            self.tick("append")
            append(fd, payload)

        monkeypatch.setattr(safeio, "_commit", _commit)
        monkeypatch.setattr(safeio, "_append", _append)

    def tick(self, kind: str) -> None:
        self.kinds.append(kind)
        self.n += 1
        if self.n == self.at:
            raise Killed


def _train_until_killed(spec: dict, run: Path, monkeypatch, at: int, torn: bool) -> bool:
    with monkeypatch.context() as m:
        Injector(m, at, torn=torn)
        try:
            Pipeline.from_spec(spec).train(out=run, progress=False)
        except Killed:
            return True
    return False


def _count_writes(spec: dict, run: Path, monkeypatch) -> list[str]:
    """The kind of each landing write of an uninterrupted run, in order."""
    with monkeypatch.context() as m:
        inj = Injector(m, None)
        Pipeline.from_spec(spec).train(out=run, progress=False)
    return inj.kinds


def test_a_kill_at_every_write_then_resume_equals_the_uninterrupted_run(
        ring_spec, reference, tmp_path, monkeypatch):
    spec = _spec(ring_spec)
    kinds = _count_writes(spec, tmp_path / "count", monkeypatch)
    # spec.json, spec.toml, 3 checkpoints and the sample plot are rewrites; 3 rows are appends
    assert kinds.count("rewrite") == 6 and kinds.count("append") == 3, kinds
    want_rows, want_w = _rows(reference), _weights(reference)
    # an append is killed plain and torn; a rewrite leaves its temp file whole or torn (alternating)
    cases = [(at, torn) for at, kind in enumerate(kinds, 1)
             for torn in ((False, True) if kind == "append" else (at % 2 == 0,))]
    for at, torn in cases:
        run = tmp_path / f"k{at}{'t' if torn else ''}"
        assert _train_until_killed(spec, run, monkeypatch, at, torn)
        Pipeline.from_spec(spec).train(out=run, progress=False)  # the same command again
        assert _rows(run) == want_rows, (at, torn)
        assert not list(run.rglob("*.tmp")), (at, torn)  # swept on start
        got = _weights(run)
        assert all(torch.equal(got[k], want_w[k]) for k in want_w), (at, torn)


def test_spec_json_killed_mid_rewrite_does_not_block_the_resume(ring_spec, reference, tmp_path,
                                                                 monkeypatch):
    spec = _spec(ring_spec)
    run = tmp_path / "run"
    Pipeline.from_spec(spec).train(out=run, progress=False)
    (run / "spec.json").write_text("")  # what a non-atomic rewrite left behind before
    (run / "checkpoints" / ".step_00000012.safetensors.abc.tmp").write_bytes(b"half")
    (run / "checkpoints" / "step_00000016.safetensors.tmp9x").write_bytes(b"half")
    Pipeline.from_spec(spec, ["train.steps=16"]).train(out=run, progress=False)
    assert json.loads((run / "spec.json").read_text())["train"]["steps"] == 16
    assert not [f for f in (run / "checkpoints").iterdir() if ".tmp" in f.name]


@pytest.mark.slow
def test_random_sequences_of_kills_and_resumes(ring_spec, reference, tmp_path, monkeypatch):
    """Several kills in a row (seeded), each at a random write of the restarted command."""
    spec = _spec(ring_spec)
    rng = random.Random(0)
    for trial in range(12):
        run = tmp_path / f"t{trial}"
        for _ in range(rng.randint(2, 4)):
            _train_until_killed(spec, run, monkeypatch, rng.randint(1, 10), rng.random() < 0.5)
        Pipeline.from_spec(spec).train(out=run, progress=False)
        assert _rows(run) == _rows(reference), trial


# ---------------------------------------------------------------------------- signals


class _SignalAt:
    def __init__(self, step: int, times: int = 1) -> None:
        self.step, self.times = step, times

    @hookimpl
    def gantk_on_step_end(self, pipeline, step, logs):
        if step == self.step:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)


def test_sigint_saves_a_checkpoint_at_the_step_boundary_and_resume_is_exact(
        ring_spec, reference, tmp_path):
    spec, run = _spec(ring_spec), tmp_path / "run"
    with temporary_plugin(_SignalAt(7), name="test-sigint"):
        with pytest.raises(Interrupted) as stop:
            Pipeline.from_spec(spec).train(out=run, progress=False)
    assert stop.value.step == 7 and stop.value.exit_code == 130
    assert [s for s, _ in list_checkpoints(run)] == [4, 7]
    Pipeline.from_spec(spec).train(out=run, progress=False)
    assert _rows(run) == _rows(reference)  # the row of step 10 averages steps 6-10 as before


def test_second_sigint_exits_at_once():
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background
    with deferred_stop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop and stop.name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before  # restored


# ---------------------------------------------------------------------------- broken models


class _Poison:
    @hookimpl
    def gantk_on_step_end(self, pipeline, step, logs):
        if step == 8:  # an update that turned the weights into NaN, with finite losses
            with torch.no_grad():
                next(pipeline.backbone.generator.parameters()).fill_(float("nan"))


def test_non_finite_weights_are_never_saved_and_the_message_says_how_to_go_on(ring_spec, tmp_path):
    run = tmp_path / "run"
    with temporary_plugin(_Poison(), name="test-poison"):
        with pytest.raises(TrainingError) as err:
            Pipeline.from_spec(_spec(ring_spec)).train(out=run, progress=False)
    text = err.value.paragraph()
    assert "step 8" in text and "non-finite" in text and "--fork-from" in text
    assert [s for s, _ in list_checkpoints(run)] == [4]
    c = Checkpoint(list_checkpoints(run)[-1][1])
    assert all(torch.isfinite(v).all() for k, v in c.tensors.items() if k.startswith("model."))


def test_fork_resumes_with_changed_optimiser_settings(ring_spec, tmp_path, cli):
    spec = _spec(ring_spec)
    run, fork = tmp_path / "run", tmp_path / "fork"
    Pipeline.from_spec(spec, ["train.steps=8"]).train(out=run, progress=False)
    # the same directory refuses changed settings, and says how to fork
    with pytest.raises(TrainingError, match="--fork-from"):
        Pipeline.from_spec(spec, ["train.lr_g=1e-5"]).train(out=run, progress=False)
    pipe = Pipeline.from_spec(spec, ["train.lr_g=1e-5", "train.betas=[0.0, 0.9]"])
    pipe.train(out=fork, progress=False, fork_from=run)
    assert pipe.step == 12
    groups = pipe.trainer.optimizers["g"].param_groups
    assert all(g["lr"] == 1e-5 and g["betas"] == (0.0, 0.9) for g in groups)
    rows = _rows(fork)
    assert [r["step"] for r in rows] == [5, 8, 10, 12]  # the source's rows (to step 8) kept
    c = Checkpoint(list_checkpoints(fork)[-1][1])
    assert c.spec["train"]["lr_g"] == 1e-5 and c.optim["g"]["param_groups"][0]["lr"] == 1e-5
    # a fork into an existing run is refused; the CLI flag does the same as the API
    code, _, err = cli("train", "--fork-from", run, "--out", fork, "--no-progress",
                       "--set", "train.steps=14", _toml(spec, tmp_path))
    assert code == 3 and "already holds one" in err


def _toml(spec: dict, tmp_path: Path) -> Path:
    import tomli_w

    path = tmp_path / "stack.toml"
    path.write_text(tomli_w.dumps(spec))
    return path


def test_a_second_process_training_into_the_same_run_directory_is_refused(tmp_path, ring_spec):
    # two sweeps sharing an --out once trained the same runs at the same time, interleaving their
    # checkpoints and logs; the run directory's lock refuses the second one with the first's pid
    from gantk.base.errors import TrainingError

    run = tmp_path / "run"
    holder = subprocess.Popen(  # a first process holding the run directory, as while training
        [sys.executable, "-c", "import sys, time; from gantk.store.runlock import run_lock\n"
         f"with run_lock({str(run)!r}):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        ring_spec["train"].update(steps=2, sample_every=0, ckpt_every=0)
        with pytest.raises(TrainingError, match=f"pid {holder.pid}") as info:
            Pipeline.from_spec(ring_spec).train(out=run, progress=False)
        assert "own --out" in info.value.paragraph()
        assert not (run / "metrics.jsonl").exists()  # refused before writing anything
    finally:
        holder.kill()
        holder.wait()
    Pipeline.from_spec(ring_spec).train(out=run, progress=False)  # the lock died with it
    assert (run / "metrics.jsonl").is_file()
