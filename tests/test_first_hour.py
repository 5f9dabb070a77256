"""Issue 29, "the first hour": CPU threads, progress from Python, the messages a newcomer meets
on a wrong path, sweeps from the command line and tables at 80 columns."""

from __future__ import annotations

import io

import pytest
import torch

from gantk import Pipeline
from gantk.base.errors import TrainingError
from gantk.facade import progress as progress_mod
from gantk.facade.threads import CAP, choose_threads, physical_cores

# ------------------------------------------------------------------ 1. CPU threads


def _train(spec: dict, run, steps: int = 2) -> None:
    Pipeline.from_spec(spec, [f"train.steps={steps}"]).train(out=run, progress=False)


def test_threads_setting_wins_then_the_environment_then_free_cores():
    assert choose_threads(3, {"OMP_NUM_THREADS": "5"}).threads == 3
    choice = choose_threads(None, {"OMP_NUM_THREADS": "5"})
    assert choice.threads == 5 and "OMP_NUM_THREADS" in choice.line()
    assert choose_threads(None, {}, cores=2, load=4.5).threads == 1  # a busy 2-core machine
    assert choose_threads(None, {}, cores=2, load=0.4).threads == 2  # an idle one
    assert choose_threads(None, {}, cores=64, load=0.0).threads == CAP
    assert choose_threads(None, {"OMP_NUM_THREADS": "x"}, cores=4, load=1.2).threads == 3
    assert 1 <= physical_cores() <= (torch.get_num_threads() + 1024)


def test_training_sets_the_threads_and_says_so(ring_spec, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        Pipeline.from_spec(ring_spec, ["train.threads=1", "train.steps=2"]).train(
            out=tmp_path / "run")
        assert torch.get_num_threads() == 1
        assert "cpu threads: 1 (train.threads)" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_a_resumed_run_keeps_the_thread_count_it_started_with(ring_spec, tmp_path, monkeypatch):
    from gantk.facade import threads as threads_mod

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    run = tmp_path / "run"
    try:
        monkeypatch.setattr(threads_mod, "load_average", lambda: 0.0)
        monkeypatch.setattr(threads_mod, "physical_cores", lambda: 2)
        _train(ring_spec, run, 2)  # an idle machine: 2 threads
        monkeypatch.setattr(threads_mod, "load_average", lambda: 9.0)  # busy at the resume
        pipe = Pipeline.from_spec(ring_spec, ["train.steps=4"])
        pipe.train(out=run, progress=False)
        assert torch.get_num_threads() == 2
        assert threads_mod.choose_threads(None, {}, cores=2, load=9.0).threads == 1
    finally:
        torch.set_num_threads(before)


def test_resume_allows_bookkeeping_keys_and_refuses_the_rest(ring_spec, tmp_path):
    run = tmp_path / "run"
    Pipeline.from_spec(ring_spec, ["train.steps=2"]).train(out=run, progress=False)
    changed = ["train.steps=4", "train.log_every=3", "train.sample_every=7", "train.ckpt_every=9",
               "train.eval_every=5", "train.eval_n=100", 'train.eval_metrics=["modes"]',
               "train.workers=0", "train.threads=1", "train.keep_checkpoints=2"]
    pipe = Pipeline.from_spec(ring_spec, changed)
    pipe.train(out=run, progress=False)
    assert pipe.step == 4
    with pytest.raises(TrainingError) as err:
        Pipeline.from_spec(ring_spec, ["train.steps=6", "train.lr_g=1e-3"]).train(
            out=run, progress=False)
    assert "train.lr_g" in err.value.paragraph() and "bookkeeping" in err.value.paragraph()


# ------------------------------------------------------------------ 2. progress from Python


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _console(file):
    from rich.console import Console

    return lambda stderr=True: Console(file=file, force_terminal=file.isatty(), width=100)


def test_in_memory_training_shows_progress_on_a_terminal(ring_spec, monkeypatch):
    tty = _Tty()
    monkeypatch.setattr(progress_mod, "Console", _console(tty))
    Pipeline.from_spec(ring_spec, ["train.steps=3", 'train.device="cpu"']).train()
    shown = tty.getvalue()
    assert "cpu threads:" in shown and "3/3" in shown


def test_in_memory_training_is_quiet_off_a_terminal_or_when_asked(ring_spec, monkeypatch):
    pipe_text = io.StringIO()
    monkeypatch.setattr(progress_mod, "Console", _console(pipe_text))
    Pipeline.from_spec(ring_spec, ["train.steps=2"]).train()  # a notebook, CI, a pipe
    tty = _Tty()
    monkeypatch.setattr(progress_mod, "Console", _console(tty))
    Pipeline.from_spec(ring_spec, ["train.steps=2"]).train(progress=False)
    assert pipe_text.getvalue() == "" and tty.getvalue() == ""


# ------------------------------------------------------------------ 3. messages on a wrong path


def test_eval_of_a_folder_of_runs_lists_them(cli, ring_spec, tmp_path):
    runs = tmp_path / "runs"
    _train(ring_spec, runs / "a")
    _train(ring_spec, runs / "b")
    code, _, err = cli("eval", runs, "--n", "10")
    assert code == 2 and "a folder of run directories, not a run" in err
    assert "2 run(s): a, b" in err and f"gantk eval {runs / 'a'}" in err
    assert "train first" not in err


def test_eval_of_a_sweep_directory_says_so(cli, tmp_path):
    from gantk.store.jobfiles import JOB_FILE

    out = tmp_path / "sweep"
    for cell in ("lambda=0__0", "lambda=0__1"):
        (out / cell / "seed_0").mkdir(parents=True)
        (out / cell / "seed_0" / JOB_FILE).write_text("{}")
    code, _, err = cli("eval", out)
    assert code == 2 and "a sweep directory, not a run" in err
    assert "lambda=0__0/seed_0" in err and "--summary" in err


@pytest.mark.parametrize("text, what", [
    ('stack = "backbone=mlp + data=ring"\n', "a stack file"),
    ('base = "ring.toml"\nseeds = [0, 1]\n[axes]\n"train.lr_g" = [1e-4, 2e-4]\n', "a sweep file"),
])
def test_eval_of_a_toml_file_names_what_it_is(cli, tmp_path, text, what):
    path = tmp_path / "x.toml"
    path.write_text(text)
    code, _, err = cli("eval", path)
    assert code == 2 and f"this is {what}" in err and "damaged" not in err


def test_a_missing_need_names_the_backbones_that_provide_it(cli, tmp_path):
    stack = tmp_path / "s.toml"
    stack.write_text('stack = "backbone=mlp + data=ring + path_length"\n')
    code, _, err = cli("check", stack)
    assert code == 2 and "'w_latents'" in err and "stylegan2" in err


def test_check_refuses_an_image_folder_that_is_not_there(cli, tmp_path):
    stack = tmp_path / "s.toml"
    missing = tmp_path / "no_images"
    stack.write_text(f'stack = "backbone=dcgan + data=image_folder"\n[backbone]\nwidth = 4\n'
                     f'[data]\nroot = "{missing}"\nresolution = 16\n')
    code, out, err = cli("check", stack)
    assert code == 2 and str(missing) in err and "does not exist" in err and "ok" not in out


# ------------------------------------------------------------------ 4. sweeps from the command line

CLR_SWEEP = """\
base = "stack.toml"
[axes.lambda]
"0,0" = ["train.lr_g=1e-4"]
"0,1" = ["train.lr_g=2e-4"]
"1,0" = ["train.lr_g=3e-4"]
[axes.method]
a = ["train.lr_d=1e-4"]
b = ["train.lr_d=2e-4"]
[eval]
n = 2000
"""


def _sweep(tmp_path):
    from gantk.sweeping.sweeps import Sweep

    (tmp_path / "stack.toml").write_text('stack = "backbone=mlp + data=ring"\n')
    path = tmp_path / "sweep.toml"
    path.write_text(CLR_SWEEP)
    return path, Sweep.from_file(path)


@pytest.mark.parametrize("only, cells", [
    (["lambda=0,0"], {"lambda=0,0,method=a", "lambda=0,0,method=b"}),
    (["0,1"], {"lambda=0,1,method=a", "lambda=0,1,method=b"}),
    (["lambda=0,0,method=b"], {"lambda=0,0,method=b"}),
    (["method=a,lambda=1,0"], {"lambda=1,0,method=a"}),
    (["a,b"], set()),  # two values of one axis: no cell has both
    (["a", "b"], {f"lambda={v},method={m}" for v in ("0,0", "0,1", "1,0") for m in "ab"}),
])
def test_only_selects_a_cell_whose_value_holds_a_comma(tmp_path, only, cells):
    from gantk.base.errors import SweepError

    _, sw = _sweep(tmp_path)
    if not cells:
        with pytest.raises(SweepError, match="matches no cell"):
            sw.select(sw.runs(tmp_path / "out"), only)
        return
    assert {r.cell for r in sw.select(sw.runs(tmp_path / "out"), only)} == cells


def test_sweep_set_changes_the_eval_table(cli, tmp_path):
    from gantk.base.errors import SweepError

    path, sw = _sweep(tmp_path)
    sw.set_eval(["eval.n=300", 'eval.metrics=["modes"]'])
    assert sw.spec.eval.n == 300 and sw.spec.eval.metrics == ["modes"]
    with pytest.raises(SweepError, match="eval.n"):
        sw.set_eval(["eval.n=1"])
    code, out, err = cli("sweep", path, "--out", tmp_path / "out", "--check", "--set",
                         "eval.n=300", "--only", "lambda=0,0,method=a")
    assert code == 0, err
    assert "--only: 1 of these run(s) would run: lambda=0,0,method=a" in out


# ------------------------------------------------------------------ 6. tables at 80 columns


def test_list_plugins_fits_80_columns(cli, monkeypatch):
    from rich.console import Console

    import gantk.cli.commands as commands

    shown = io.StringIO()
    monkeypatch.setattr(commands, "console", Console(file=shown, width=80, force_terminal=True,
                                                     color_system=None))
    code, _, _ = cli("list-plugins")
    lines = shown.getvalue().splitlines()
    assert code == 0 and len(lines) < 80 and max(map(len, lines)) <= 80
    assert any(line.startswith("dcgan ") and "backbone" in line for line in lines)
    assert "--json" in lines[-1] or "--json" in " ".join(lines[-3:])


@pytest.mark.parametrize("value, text", [(0.004067, "0.00407"), (0.8234, "0.823"),
                                         (45.678, "45.7"), (1234.5, "1234"), (12.0, "12.0")])
def test_eval_prints_three_significant_digits(value, text):
    from gantk.cli.eval_cmd import _fmt

    assert _fmt("fid", value) == text
    assert _fmt("modes_covered", 8.0) == "8" and _fmt("x", float("nan")) == "nan (undefined)"
