"""The trainer and checkpoints: resume equality, atomic writes, damaged files, NaN stops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import gantk.store.checkpoint as ckpt_mod
from gantk import CheckpointError, Pipeline, TrainingError, temporary_plugin
from gantk.stack.hookspecs import hookimpl
from gantk.base.interfaces import Regularizer
from gantk.store.rundirs import list_checkpoints
from gantk.base.safeio import RunDirError


def _losses(run: Path) -> list[tuple[int, float, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss/d"], r["loss/g"]) for r in rows]


@pytest.mark.parametrize("spec_name", ["ring_spec", "digits_spec"])
def test_resumed_run_equals_uninterrupted_run(tmp_path, spec_name, request):
    spec = request.getfixturevalue(spec_name)
    steps = spec["train"]["steps"]
    full = tmp_path / "full"
    Pipeline.from_spec(spec).train(out=full, progress=False)

    half = tmp_path / "half"
    Pipeline.from_spec(spec, [f"train.steps={steps // 2}"]).train(out=half, progress=False)
    assert [s for s, _ in list_checkpoints(half)] == [steps // 2]
    resumed = Pipeline.from_spec(spec)  # a new process would build it the same way
    resumed.train(out=half, progress=False)
    assert resumed.step == steps
    assert _losses(half) == _losses(full)  # bit-identical losses on CPU
    a = Pipeline.load(full).sample(8)
    b = Pipeline.load(half).sample(8)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_running_again_on_a_finished_run_does_nothing_more(tmp_path, ring_spec):
    run = tmp_path / "run"
    Pipeline.from_spec(ring_spec).train(out=run, progress=False)
    before = _losses(run)
    pipe = Pipeline.from_spec(ring_spec)
    pipe.train(out=run, progress=False)
    assert pipe.step == ring_spec["train"]["steps"] and _losses(run) == before


def test_resume_refuses_a_different_stack(tmp_path, ring_spec):
    run = tmp_path / "run"
    Pipeline.from_spec(ring_spec, ["train.steps=2"]).train(out=run, progress=False)
    with pytest.raises(TrainingError) as err:
        Pipeline.from_spec(ring_spec, ["backbone.latent_dim=5"]).train(out=run, progress=False)
    assert "backbone.latent_dim" in err.value.paragraph() and "new --out" in err.value.paragraph()


def test_checkpoint_write_is_atomic(tmp_path, ring_spec, monkeypatch):
    run = tmp_path / "run"
    pipe = Pipeline.from_spec(ring_spec, ["train.steps=10"])
    pipe.train(out=run, progress=False)
    good = list_checkpoints(run)[-1][1]
    original = good.read_bytes()

    def explode(tensors, path, metadata=None):
        Path(path).write_bytes(b"partial")  # a crash half-way through writing
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod, "save_file", explode)
    with pytest.raises(RunDirError, match="disk full"):
        pipe.save_checkpoint(good)  # overwrite attempt of the same file
    assert good.read_bytes() == original
    assert not [f for f in good.parent.iterdir() if f.name.endswith(".tmp")]


def test_damaged_and_foreign_checkpoints_are_clear_errors(tmp_path, ring_spec):
    run = tmp_path / "run"
    Pipeline.from_spec(ring_spec).train(out=run, progress=False)
    (s1, first), (s2, last) = list_checkpoints(run)[-2:]
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CheckpointError) as err:
        Pipeline.load(last)
    assert "truncated" in err.value.paragraph() and str(last) in err.value.paragraph()
    # a run directory falls back to the newest intact checkpoint
    assert Pipeline.load(run).step == s1

    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a gantk checkpoint"):
        Pipeline.load(foreign)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError):
        Pipeline.load(garbage)


def test_checkpoint_of_another_stack_does_not_load_silently(tmp_path, ring_spec):
    run = tmp_path / "run"
    Pipeline.from_spec(ring_spec, ["train.steps=2"]).train(out=run, progress=False)
    other = Pipeline.from_spec(ring_spec, ["backbone.hidden=[8]"])
    with pytest.raises(CheckpointError, match="different backbone"):
        other.load_checkpoint(list_checkpoints(run)[-1][1])


def test_checkpoint_holds_everything_and_metadata_is_strings(tmp_path, digits_spec):
    pipe = Pipeline.from_spec(digits_spec, ["train.ema_decay=0.9"])
    pipe.train(steps=2, progress=False)
    path = pipe.save(tmp_path / "saved")
    c = ckpt_mod.Checkpoint(path)
    keys = set(c.tensors)
    assert any(k.startswith("model.backbone.generator.") for k in keys)
    assert any(k.startswith("model.backbone.discriminator.") for k in keys)
    assert any(k.startswith("model.ema.") for k in keys)
    assert any(k.startswith("optim.g.") for k in keys) and any(k.startswith("optim.d.") for k in keys)
    assert {"rng.torch", "rng.data.gen"} <= keys
    assert c.step == 2 and c.spec["backbone"]["name"] == "dcgan"
    assert c.plugins["gantk"]
    loaded = Pipeline.load(tmp_path / "saved")
    assert loaded.step == 2
    for (k, v), (k2, v2) in zip(pipe.ema.state_dict().items(), loaded.ema.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


class _Explodes(Regularizer):
    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def g_terms(self, ctx):
        self.calls += 1
        value = torch.tensor(float("nan")) if int(self.calls) >= 5 else torch.tensor(0.0)
        return {"boom": value}


class _NaNPlugin:
    @hookimpl
    def gantk_register(self, register):
        register.regularizer("explodes", lambda p, c: _Explodes(), summary="test")


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, ring_spec):
    run = tmp_path / "run"
    with temporary_plugin(_NaNPlugin(), name="test-nan"):
        pipe = Pipeline.from_spec(ring_spec, ['stack="backbone=mlp + data=ring + explodes"',
                                              "train.ckpt_every=2"])
        with pytest.raises(TrainingError) as err:
            pipe.train(out=run, progress=False)
    text = err.value.paragraph()
    assert "step 5" in text and "explodes/boom" in text and "nan" in text
    assert [s for s, _ in list_checkpoints(run)] == [2, 4]
    c = ckpt_mod.Checkpoint(list_checkpoints(run)[-1][1])
    assert all(torch.isfinite(v).all() for k, v in c.tensors.items() if k.startswith("model."))


def test_losses_go_down_on_ring(ring_spec):
    """Sanity of the whole loop: D learns to separate early, G's fakes move toward the modes."""
    pipe = Pipeline.from_spec(ring_spec, ["train.steps=300", "backbone.hidden=[64, 64]"])
    x0 = pipe.sample(500)
    pipe.train(progress=False)
    x1 = pipe.sample(500)
    modes = pipe.data_info.modes

    def dist(x):
        return torch.cdist(x, modes).min(1).values.mean().item()

    assert dist(x1) < dist(x0) * 0.7


def test_best_checkpoint_only_improves_across_a_resume(tmp_path, ring_spec):
    from gantk.store.checkpoint import read_extra

    spec = {**ring_spec, "train": {**ring_spec["train"], "eval_every": 5, "eval_n": 200,
                                   "eval_metrics": ["prdc"], "best_metric": "coverage"}}
    run = tmp_path / "run"
    pipe = Pipeline.from_spec(spec, ["train.steps=10"])
    pipe.train(out=run, progress=False)
    rows = [json.loads(ln) for ln in (run / "eval.jsonl").read_text().splitlines()]
    best = read_extra(run / "checkpoints" / "best.safetensors")["best"]
    assert best["coverage"] == max(r["coverage"] for r in rows)
    # pretend step 10 was perfect: no later evaluation may replace it, resumed or not
    pipe.save_checkpoint(run / "checkpoints" / "best.safetensors",
                         extra={"best": {"coverage": 1.0, "step": 10}})
    Pipeline.from_spec(spec, ["train.steps=20"]).train(out=run, progress=False)
    assert [json.loads(ln)["step"] for ln in (run / "eval.jsonl").read_text().splitlines()] == [
        5, 10, 15, 20]
    assert read_extra(run / "checkpoints" / "best.safetensors")["best"] == {"coverage": 1.0, "step": 10}
