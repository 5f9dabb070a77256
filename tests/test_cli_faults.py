"""The CLI's last line of defence, and real signals sent to a real `gantk train` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

import gantk.cli.app as cli_mod
from proc_helpers import wait_for_torch_import

# what the installed console script runs (pyproject: gantk = "gantk.cli.entry:main")
GANTK = [sys.executable, "-c", "import sys; from gantk.cli.entry import main; sys.exit(main())"]


def test_an_unexpected_error_is_one_short_paragraph(monkeypatch, cli, tmp_path):
    def broken(args):
        raise ValueError("x" * 5_000_000)

    monkeypatch.setattr(cli_mod, "cmd_check", broken)
    stack = tmp_path / "s.toml"
    stack.write_text("stack = 'backbone=mlp'\n")
    code, out, err = cli("check", stack)
    text = " ".join(err.split())
    assert code == 1 and "Traceback" not in err and len(err) < 3000
    assert "gantk check" in text and "ValueError" in text and "--debug" in text
    with pytest.raises(ValueError):
        cli("check", stack, "--debug")


def test_ctrl_c_outside_training_is_one_line(monkeypatch, cli, tmp_path):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_mod, "cmd_check", interrupted)
    stack = tmp_path / "s.toml"
    stack.write_text("stack = 'backbone=mlp'\n")
    code, _, err = cli("check", stack)
    assert code == 130 and "interrupted" in err and "Traceback" not in err


def _stack(ring_spec: dict, tmp_path: Path, steps: int) -> Path:
    ring_spec["train"].update(steps=steps, log_every=7, ckpt_every=1000)
    path = tmp_path / "stack.toml"
    path.write_text(tomli_w.dumps(ring_spec))
    return path


def _spawn(*args) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # as from a terminal: Ctrl-C reaches the child even when the suite itself runs in the
    # background (nohup, `&`), where SIGINT starts ignored and children inherit that
    return subprocess.Popen([*GANTK, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_ctrl_c_during_start_up_prints_no_traceback(ring_spec, tmp_path):
    proc = _spawn("train", _stack(ring_spec, tmp_path, 50), "--out", tmp_path / "run",
                  "--no-progress")
    wait_for_torch_import(proc)  # gantk's own start-up code runs; the interpreter's is over
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted" in err or "stopped" in err


def test_ctrl_c_while_importing_the_cli_prints_no_traceback(monkeypatch, capsys):
    import builtins

    from gantk.cli import entry

    real_import = builtins.__import__

    def interrupted_import(name, *args, **kwargs):
        if name == "app":  # `from .app import main` inside gantk.cli.entry
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted_import)
    assert entry.main() == 130
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_training_saves_and_the_same_command_resumes(sig, ring_spec, tmp_path):
    stack, run = _stack(ring_spec, tmp_path, 100_000), tmp_path / "run"
    proc = _spawn("train", stack, "--out", run, "--no-progress")
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err and "saved" in err, err
    ckpts = sorted((run / "checkpoints").glob("step_*.safetensors"))
    assert len(ckpts) == 1
    stopped = int(ckpts[0].stem.split("_")[1])
    proc = _spawn("train", stack, "--out", run, "--no-progress", "--steps", stopped + 9)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == stopped + 9


@pytest.mark.slow
def test_sigkill_at_random_moments_never_blocks_the_same_command(ring_spec, tmp_path):
    """A real kill -9 (seeded times), then the same command: it must always finish."""
    import random

    ring_spec["train"].update(ckpt_every=20)
    stack, run = _stack(ring_spec, tmp_path, 400), tmp_path / "run"
    rng = random.Random(0)
    for _ in range(4):
        proc = _spawn("train", stack, "--out", run, "--no-progress")
        time.sleep(rng.uniform(2.0, 6.0))
        proc.kill()
        proc.communicate(timeout=60)
    proc = _spawn("train", stack, "--out", run, "--no-progress")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0 and "Traceback" not in err, err
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(7, 400, 7)) + [400]


def test_a_reader_that_closes_the_pipe_early_is_not_an_error():
    """`gantk list-plugins | head -1`: the closed pipe ends the command quietly."""
    proc = _spawn("list-plugins")
    proc.stdout.close()  # long before the command writes its first line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "error" not in err.lower(), err
