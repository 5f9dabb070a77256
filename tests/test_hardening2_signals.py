"""Hardening, round two (issue 30): signals and messages. Ctrl-C at any moment of start-up is one
line (no traceback, no segfault); a full disk during a checkpoint, a NaN stop without a
checkpoint, a network too large for memory and a spec with hundreds of unknown keys are each one
short paragraph; the process-group timeout is a setting."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gantk import GantkError, Pipeline, SpecError, TrainingError
from gantk.base.safeio import RunDirError

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


def _torch_loading(proc, timeout: float = 60.0) -> None:
    """Wait until the child maps libtorch: gantk's own start-up is running (the interpreter's
    first ~0.1 s, before any gantk code, is Python's and cannot be guarded)."""
    maps, deadline = Path(f"/proc/{proc.pid}/maps"), time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if "libtorch" in maps.read_text():
                return
        except OSError:
            pass
        time.sleep(0.005)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.4, 1.0, 2.0])
def test_ctrl_c_at_any_moment_of_start_up_is_one_line(delay, ring_spec, tmp_path):
    ring_spec["train"]["steps"] = 5
    proc = subprocess.Popen([sys.executable, "-m", "gantk", "train", str(_stack(ring_spec, tmp_path)),
                             "--out", str(tmp_path / "run"), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _torch_loading(proc)
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


def test_a_library_import_keeps_python_s_own_ctrl_c():
    code = "import signal, gantk\nprint(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    assert out.stdout.strip() == "True", out.stderr
