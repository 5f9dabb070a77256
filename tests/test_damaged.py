"""Damaged and foreign files in a run directory, odd --out paths, and what files may decide:
each is a fallback to the newest intact checkpoint with a warning, or one clear paragraph."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from gantk import CheckpointError, GantkError, Pipeline
from gantk.store.checkpoint import Checkpoint
from gantk.store.rundirs import list_checkpoints


@pytest.fixture
def cli(cli):
    """The CLI with rich's line wrapping undone in the captured output."""
    def run(*argv):
        code, out, err = cli(*argv)
        return code, " ".join(out.split()), " ".join(err.split())
    return run


def _spec(ring_spec: dict) -> dict:
    ring_spec["train"].update(steps=8, log_every=3, ckpt_every=4, keep_checkpoints=3)
    return ring_spec


@pytest.fixture
def run(ring_spec, tmp_path) -> Path:
    run = tmp_path / "run"
    Pipeline.from_spec(_spec(ring_spec)).train(out=run, progress=False)
    return run


@pytest.fixture
def stack(ring_spec, tmp_path) -> Path:
    import tomli_w

    path = tmp_path / "stack.toml"
    path.write_text(tomli_w.dumps(_spec(ring_spec)))
    return path


def _rewrite(path: Path, *, meta: dict | None = None, tensors: dict | None = None) -> None:
    """Write ``path`` again with some metadata fields or tensors replaced (a hostile edit)."""
    with safe_open(str(path), framework="pt") as fh:
        metadata = dict(fh.metadata())
        data = {k: fh.get_tensor(k) for k in fh.keys()}
    metadata.update(meta or {})
    data.update(tensors or {})
    if tensors:  # keep the checksum consistent: only the shape check may catch these
        from gantk.store.checkpoint import tensor_digest
        metadata["sha256"] = tensor_digest(data)
    save_file(data, str(path), metadata={k: v for k, v in metadata.items() if v is not None})


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # in the tensor data, past the header
    path.write_bytes(bytes(data))


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


DAMAGE = {
    "spec is a string": lambda p: _rewrite(p, meta={"spec": json.dumps("/etc/passwd")}),
    "spec is not JSON": lambda p: _rewrite(p, meta={"spec": "{not json"}),
    "optim is not JSON": lambda p: _rewrite(p, meta={"optim": "[1,"}),
    "extra is a list": lambda p: _rewrite(p, meta={"extra": "[]"}),
    "step is not a number": lambda p: _rewrite(p, meta={"step": "eight"}),
    "step is absurd": lambda p: _rewrite(p, meta={"step": "9" * 40}),
    "optimiser groups of another optimiser": lambda p: _rewrite(p, meta={"optim": json.dumps(
        {"g": {"param_groups": [{"params": [0], "lr": {"x": 1}}], "scalars": {}}})}),
    "optimiser tensor of the wrong shape": lambda p: _rewrite(
        p, tensors={"optim.g.0.exp_avg": torch.zeros(3, 3)}),
    "rng tensor of the wrong shape": lambda p: _rewrite(p, tensors={"rng.torch": torch.zeros(7)}),
    "a flipped bit": _flip_a_bit,
    "a FIFO": _fifo,
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:100]),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_newest_checkpoint_falls_back_with_a_warning(damage, run, stack, cli):
    newest = list_checkpoints(run)[-1][1]
    DAMAGE[damage](newest)
    code, out, err = cli("sample", run, "--n", "8", "--out", run / "s.png")
    if "shape" in damage or "groups" in damage:  # sampling needs no optimiser or RNG state
        assert code == 0 and "step 8" in out
    else:
        assert code == 0 and "step 4" in out and "skipped" in err and "Traceback" not in err
    code, out, err = cli("train", stack, "--out", run, "--no-progress")
    assert code == 0 and "from step 4" in err, err
    assert "Traceback" not in err
    if damage != "a FIFO":  # a loose damaged file is a clear refusal
        code, _, err = cli("sample", newest, "--n", "8", "--out", run / "s.png")
        assert (code, "Traceback" in err) in ((2, False), (0, False))


def test_a_flipped_bit_is_detected_by_the_checksum(run):
    newest = list_checkpoints(run)[-1][1]
    _flip_a_bit(newest)
    with pytest.raises(CheckpointError, match="checksum"):
        Checkpoint(newest)


def test_damaged_logs_and_spec_json_do_not_block_a_resume(run, stack, cli, ring_spec):
    (run / "spec.json").write_text('"just a string"')
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 9, "loss/d"')  # a torn last row
    with open(run / "eval.jsonl", "w") as fh:
        fh.write('{"step": 4, "source": "gantk eval", "fid": 1.0}\n[1, 2]\n{"step": 8')
    code, _, err = cli("train", stack, "--out", run, "--no-progress", "--set", "train.steps=12")
    assert code == 0, err
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6, 8, 9, 12]
    assert json.loads((run / "spec.json").read_text())["train"]["steps"] == 12
    evals = [json.loads(ln) for ln in (run / "eval.jsonl").read_text().splitlines()]
    assert evals == [{"step": 4, "source": "gantk eval", "fid": 1.0}]  # the user's result kept
    code, out, err = cli("plot", run)
    assert code == 0, err


def test_checkpoints_symlink_loop_and_odd_out_paths_are_one_paragraph(run, stack, cli, tmp_path):
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "checkpoints").symlink_to(loop / "checkpoints")
    code, _, err = cli("sample", loop, "--n", "4", "--out", tmp_path / "x.png")
    assert code == 2 and "no checkpoint" in err and "Traceback" not in err
    code, _, err = cli("train", stack, "--out", loop, "--no-progress")
    assert code == 2 and "symbolic link" in err and "Traceback" not in err, err
    a_file = tmp_path / "file"
    a_file.write_text("x")
    code, _, err = cli("train", stack, "--out", a_file, "--no-progress")
    assert code == 2 and "is a file, not a folder" in err
    (tmp_path / "self").symlink_to(tmp_path / "self")
    code, _, err = cli("train", stack, "--out", tmp_path / "self", "--no-progress")
    assert code == 2 and "Traceback" not in err and len(err) < 1500


def test_full_disk_is_one_paragraph_and_keeps_the_earlier_checkpoints(run, stack, cli,
                                                                       monkeypatch):
    import errno

    import gantk.base.safeio as safeio

    before = {f: f.read_bytes() for _, f in list_checkpoints(run)}

    def full(tmp, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safeio, "_commit", full)
    code, _, err = cli("train", stack, "--out", run, "--no-progress", "--set", "train.steps=12")
    assert code == 2 and "No space left" in err and "untouched" in err
    assert {f: f.read_bytes() for _, f in list_checkpoints(run)} == before


# ---------------------------------------------------------------------------- files decide nothing


def test_a_foreign_checkpoint_in_a_run_is_skipped_and_eval_never_writes_into_it(
        run, ring_spec, tmp_path, cli):
    other = tmp_path / "other"
    Pipeline.from_spec(ring_spec, ["backbone.hidden=[8]", "train.steps=12",
                                   "train.ckpt_every=12"]).train(out=other, progress=False)
    dropped = run / "checkpoints" / "step_00000099.safetensors"
    dropped.write_bytes(list_checkpoints(other)[-1][1].read_bytes())
    code, out, err = cli("sample", run, "--n", "4", "--out", tmp_path / "s.png")
    assert code == 0 and "step 8" in out and "different stack" in err
    code, out, err = cli("eval", dropped, "--n", "100", "--metrics", "modes")
    assert code == 0, err
    assert not (run / "eval.jsonl").exists() and "another stack" in err


def test_eval_of_a_loose_checkpoint_writes_nothing_two_folders_up(run, tmp_path, cli):
    loose = tmp_path / "a" / "b" / "model.safetensors"
    loose.parent.mkdir(parents=True)
    loose.write_bytes(list_checkpoints(run)[-1][1].read_bytes())
    code, out, err = cli("eval", loose, "--n", "100", "--metrics", "modes")
    assert code == 0, err
    assert not (tmp_path / "eval.jsonl").exists() and not (tmp_path / "a" / "eval.jsonl").exists()


def test_a_stored_spec_cannot_turn_on_downloads(run):
    newest = list_checkpoints(run)[-1][1]
    spec = Checkpoint(newest).spec
    spec["data"]["download"] = True
    _rewrite(newest, meta={"spec": json.dumps(spec)})
    with pytest.raises(GantkError, match="download"):  # validated like any spec: ring has none
        Pipeline.load(newest)
    spec["data"] = {"name": "cifar10", "root": "/", "download": True}
    _rewrite(newest, meta={"spec": json.dumps(spec)})
    from gantk.facade.pipeline import Pipeline as P

    seen = {}

    def fake_resolve(spec, registry):
        seen["data"] = spec.data.options
        raise RuntimeError("stop here")

    import gantk.stack.build as build
    orig = build.resolve
    build.resolve = fake_resolve
    try:
        with pytest.raises(RuntimeError, match="stop here"):
            P.load(newest)
    finally:
        build.resolve = orig
    assert seen["data"]["download"] is False


def test_a_row_appended_after_a_torn_row_stands_on_its_own_line(tmp_path):
    from gantk.base.safeio import append_jsonl, read_jsonl

    log = tmp_path / "eval.jsonl"
    log.write_text('{"step": 1}\n{"step": 2, "fi')
    append_jsonl(log, {"step": 3})
    assert read_jsonl(log) == [{"step": 1}, {"step": 3}]
