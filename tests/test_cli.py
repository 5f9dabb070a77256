"""The command line as a user runs it: outputs on disk, exit codes, one-paragraph errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

STACK = """\
stack = "backbone=mlp + data=ring"
[backbone]
hidden = [32, 32]
[data]
per_mode = 200
[train]
steps = 30
batch_size = 64
log_every = 10
sample_every = 15
ckpt_every = 15
"""


def _stack(tmp_path: Path, text: str = STACK) -> Path:
    path = tmp_path / "stack.toml"
    path.write_text(text)
    return path


def test_train_writes_the_run_directory(cli, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli("train", _stack(tmp_path), "--out", run, "--set", "train.steps=20")
    assert code == 0, err
    assert "done" in out and "step 20" in out
    assert (run / "spec.toml").exists() and json.loads((run / "spec.json").read_text())["train"]["steps"] == 20
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20] and {"loss/d", "loss/g", "it_per_s"} <= set(rows[0])
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_00000015.png", "step_00000020.png"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step_00000015.safetensors", "step_00000020.safetensors"]
    with Image.open(run / "samples" / "step_00000020.png") as im:
        assert im.size[0] > 100  # a scatter plot, not an empty file
    # the same command again resumes and extends
    code, out, _ = cli("train", _stack(tmp_path), "--out", run, "--steps", "30")
    assert code == 0 and "step 30" in out
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]


def test_sample_writes_png_npz_pt(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("train", _stack(tmp_path), "--out", run, "--steps", "5")[0] == 0
    code, out, _ = cli("sample", run, "--n", "64", "--out", tmp_path / "s.png")
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 1000
    assert cli("sample", run, "--n", "10", "--out", tmp_path / "s.npz")[0] == 0
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["x"].shape == (10, 2) and arrays["z"].shape == (10, 2)
    assert cli("sample", run, "--n", "7", "--out", tmp_path / "s.pt")[0] == 0
    assert torch.load(tmp_path / "s.pt")["x"].shape == (7, 2)
    code, _, err = cli("sample", run, "--n", "7", "--out", tmp_path / "s.jpg")
    assert code == 2 and "--out" in err and ".png" in err


def test_sample_grid_for_images(cli, tmp_path):
    stack = _stack(tmp_path, 'stack = "backbone=dcgan + data=digits"\n[backbone]\nwidth = 4\n'
                             "[data]\nresolution = 16\n[train]\nsteps = 2\nbatch_size = 8\n")
    run = tmp_path / "run"
    assert cli("train", stack, "--out", run, "--no-progress")[0] == 0
    assert cli("sample", run, "--n", "16", "--out", tmp_path / "g.png")[0] == 0
    with Image.open(tmp_path / "g.png") as im:
        assert im.size == (4 * 17 + 1, 4 * 17 + 1)  # 4x4 grid of 16 px with 1 px padding


def test_check_prints_the_resolved_stack(cli, tmp_path):
    code, out, _ = cli("check", _stack(tmp_path), "--set", "train.steps=500")
    assert code == 0 and "ok" in out and "steps = 500" in out
    assert "std = 0.001" in out and "lr_g" in out  # defaults filled in
    code, out, _ = cli("check", _stack(tmp_path), "--json")
    assert json.loads(out)["backbone"]["latent_dim"] == 2


def test_errors_are_one_paragraph_with_exit_code(cli, tmp_path):
    bad = _stack(tmp_path, 'stack = "backbone=mlp + data=rign"\n')
    code, out, err = cli("check", bad)
    assert code == 2 and "Traceback" not in err
    assert "data.name" in err and "'ring'" in err and "Fix:" in err
    code, _, err = cli("train", tmp_path / "missing.toml", "--out", tmp_path / "r")
    assert code == 2 and "file not found" in err
    code, _, err = cli("sample", tmp_path / "nothing", "--out", tmp_path / "x.png")
    assert code == 2 and "no such file or run directory" in err


def test_show_lists_options(cli):
    code, out, _ = cli("show", "gp")
    assert code == 0 and "weight" in out and "center" in out and "10.0" in out


def test_show_gives_bounds_and_choices(cli):
    code, out, _ = cli("show", "advlat_z")
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:]]
            for line in out.splitlines() if line.startswith("│") and line.split("│")[1].strip()}
    assert code == 0 and rows["steps"][0] == "int" and rows["steps"][2] == "100"
    assert rows["steps"][1].startswith(">= 0,") and rows["step_size"][1].startswith("> 0")
    assert rows["clamp_to_prior"][1] == ""  # a bool has no bounds
    assert rows["network_mode"][0].startswith("Literal[") and "'train']" in out


def test_console_script_runs(tmp_path):
    """The installed `gantk` entry point, as a user types it (with --debug off, no traceback)."""
    exe = Path(sys.executable).with_name("gantk")
    proc = subprocess.run([str(exe), "check", str(tmp_path / "none.toml")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "file not found" in proc.stderr


def test_version_names_gantk_torch_and_python(cli, capsys):
    import platform

    import pytest

    import gantk

    with pytest.raises(SystemExit) as stop:
        cli("--version")
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"gantk {gantk.__version__} (torch {torch.__version__.split('+')[0]}")
    assert f"Python {platform.python_version()}" in out


def test_python_dash_m_gantk_is_the_gantk_command(tmp_path):
    # what a machine without the console script on PATH (a --target install, a GPU image) runs
    out = subprocess.run([sys.executable, "-m", "gantk", "check", "--set", "train.steps=3",
                          str(Path(__file__).parents[1] / "examples" / "stacks" / "ring.toml")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "mlp" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "gantk", "check", str(tmp_path / "missing.toml")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
