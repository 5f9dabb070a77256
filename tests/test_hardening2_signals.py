"""Hardening, round two (issue 30): signals and messages. Ctrl-C at any moment of start-up is one
line (no traceback, no segfault); a full disk during a checkpoint, a NaN stop without a
checkpoint, a network too large for memory and a spec with hundreds of unknown keys are each one
short paragraph; the process-group timeout is a setting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gantk import GantkError, Pipeline, SpecError, TrainingError
from gantk.base.safeio import RunDirError
from proc_helpers import wait_for_torch_import

ROOT = Path(__file__).resolve().parents[1]


def _stack(spec: dict, tmp_path: Path) -> Path:
    import tomli_w

    path = tmp_path / "stack.toml"
    path.write_text(tomli_w.dumps(spec))
    return path


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.4, 1.0, 2.0])
def test_ctrl_c_at_any_moment_of_start_up_is_one_line(delay, ring_spec, tmp_path):
    ring_spec["train"]["steps"] = 5
    proc = subprocess.Popen([sys.executable, "-m", "gantk", "train", str(_stack(ring_spec, tmp_path)),
                             "--out", str(tmp_path / "run"), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_torch_import(proc)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    lines = [x for x in err.splitlines() if x.strip()]
    if proc.returncode == 0:  # the run finished before the signal (a fast moment): fine
        return
    assert proc.returncode == 130, (proc.returncode, err)  # never -11 (a segfault) or 1
    assert "Traceback" not in err and "Segmentation" not in err, err
    assert any(x.startswith(("interrupted", "stopped")) for x in lines), err
    assert len([x for x in lines if x.startswith(("interrupted", "stopped", "error"))]) == 1, err


def test_the_interrupt_handler_exits_only_mid_import():
    import gantk

    with pytest.raises(KeyboardInterrupt):  # an ordinary frame: the ordinary KeyboardInterrupt
        gantk._interrupt_while_importing(signal.SIGINT, sys._getframe())


def test_cli_main_finally_imports_nothing_heavy():
    """An error in the arguments (or Ctrl-C before a command ran) leaves torch unimported."""
    code = ("import sys\nfrom gantk.cli.app import main\ntry:\n    main(['--no-such-flag'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    assert out.stdout.strip() == "False", out.stderr


def _default_sigint() -> None:
    """In the child: SIGINT as a terminal gives it (a shell's background job inherits it ignored,
    and Python then installs no handler of its own)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_library_import_keeps_python_s_own_ctrl_c():
    code = "import signal, gantk\nprint(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                         preexec_fn=_default_sigint)  # a background job starts with SIGINT ignored
    assert out.stdout.strip() == "True", out.stderr


# ---------------------------------------------------------------- fp16 resume
def _rows(run: Path) -> list[dict]:
    import json

    return [{k: v for k, v in json.loads(x).items() if k not in ("time", "it_per_s")}
            for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_fp16_on_cpu_resumes_equal_to_the_uninterrupted_run(ring_spec, tmp_path):
    """The fp16 GradScalers' state (loss scale, growth tracker) travels in the checkpoint: without
    it a resumed run scaled (and skipped) other steps (loss/d 1.178 vs 1.184 at step 25)."""
    ring_spec["train"].update(steps=30, log_every=5, ckpt_every=10, precision="fp16", lr_d=2e-3,
                              lr_g=2e-3)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    Pipeline.from_spec(ring_spec).train(out=whole, progress=False)
    Pipeline.from_spec(ring_spec, ["train.steps=10"]).train(out=parts, progress=False)
    Pipeline.from_spec(ring_spec).train(out=parts, progress=False)
    assert _rows(parts) == _rows(whole)


# ---------------------------------------------------------------- messages
def test_a_full_disk_during_a_checkpoint_names_the_file(ring_spec, tmp_path, monkeypatch):
    from safetensors import SafetensorError

    import gantk.store.checkpoint as checkpoint

    run = tmp_path / "run"
    Pipeline.from_spec(ring_spec, ["train.steps=10"]).train(out=run, progress=False)

    def full(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                              'message: "No space left on device" })')

    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(RunDirError) as err:
        Pipeline.from_spec(ring_spec).train(out=run, progress=False)
    text = err.value.paragraph()
    assert "step_00000020.safetensors" in text and "No space left" in text
    assert "free disk space" in text
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000010.safetensors"]


def test_a_nan_stop_without_a_checkpoint_does_not_claim_one(ring_spec, tmp_path, recwarn):
    ring_spec["train"].update(optimizer="sgd", lr_g=10, lr_d=10, steps=40, ckpt_every=20)
    with pytest.raises(TrainingError) as err:
        Pipeline.from_spec(ring_spec).train(out=tmp_path / "run", progress=False)
    text = err.value.paragraph()
    assert "non-finite" in text and "intact" not in text and "no checkpoint was written" in text
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)
                and "torch" in str(w.filename)], [str(w.message) for w in recwarn]


def test_a_nan_stop_after_a_checkpoint_names_it(ring_spec, tmp_path):
    ring_spec["train"].update(steps=4, ckpt_every=2)
    run = tmp_path / "run"
    pipe = Pipeline.from_spec(ring_spec)
    pipe.train(out=run, progress=False)
    from gantk.base.errors import NONFINITE_FIX
    from gantk.facade.setup import nonfinite_fix

    text = nonfinite_fix(run)
    assert "step_00000004.safetensors (step 4), is intact" in text and f"--fork-from {run}" in text
    assert NONFINITE_FIX not in text


def test_a_network_too_big_for_memory_is_the_size_refusal(digits_spec, monkeypatch):
    import gantk.facade.setup as setup

    monkeypatch.setattr(setup, "available_memory", lambda: 10_000)  # bytes: nothing fits
    with pytest.raises(SpecError, match="do not fit in this machine's memory") as err:
        Pipeline.from_spec(digits_spec)
    assert err.value.where == "backbone" and "data.resolution" in err.value.fix


def test_an_allocation_failure_while_building_is_the_size_refusal(digits_spec, monkeypatch):
    import gantk.stack.build as build

    def fail(res):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't "
                           "allocate memory: you tried to allocate 2147483648 bytes.")

    real = build.build_backbone
    calls = []

    def second_call_fails(res):  # the first call is the meta-device estimate
        calls.append(1)
        return real(res) if len(calls) == 1 else fail(res)

    monkeypatch.setattr(build, "build_backbone", second_call_fails)
    with pytest.raises(SpecError, match="do not fit in this machine's memory"):
        Pipeline.from_spec(digits_spec)


def test_hundreds_of_unknown_keys_are_a_short_message(ring_spec):
    for section in (None, "train", "backbone", "data"):
        spec = dict(ring_spec)
        keys = {f"unknown_key_number_{i}": i for i in range(400)}
        if section is None:
            spec.update(keys)
        else:
            spec[section] = {**spec.get(section, {}), **keys}
        with pytest.raises(GantkError) as err:
            Pipeline.from_spec(spec)
        text = str(err.value)
        assert len(text) < 600 and "400 unknown" in text and "and 396 more" in text, text


def test_the_process_group_timeout_is_a_setting(ring_spec, monkeypatch):
    import datetime

    import gantk.train.distributed as distributed

    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)

    def fake_init(backend, timeout):
        seen.update(backend=backend, timeout=timeout)
        raise RuntimeError("stop here")

    monkeypatch.setattr(distributed.dist, "init_process_group", fake_init)
    with pytest.raises(GantkError, match="cannot join the process group"):
        Pipeline.from_spec(ring_spec, ["train.dist_timeout=90"])
    assert seen["timeout"] == datetime.timedelta(seconds=90)
    with pytest.raises(GantkError):
        Pipeline.from_spec(ring_spec)
    assert seen["timeout"] == datetime.timedelta(minutes=10)  # not gloo's 30 minutes


def test_a_dead_peer_is_named_with_how_to_resume(monkeypatch):
    import gantk.train.distributed as distributed

    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    exc = RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed "
                       "by peer [127.0.0.1]:29500")
    err = distributed.peer_failure(exc, 7, "runs/x")
    text = err.paragraph()
    assert isinstance(err, TrainingError) and "[rank 1]" in text and "died" in text
    assert "step 8" in text and "--out runs/x" in text and "resumes" in text
    assert distributed.peer_failure(ValueError("a bug of ours"), 7) is None
