"""Logger plugins on the event hooks: TensorBoard event files with the expected tags; W&B (offline)
and MLflow (its default SQLite store) read back from what they wrote: the logged values, sample
images that are not black, one tracker run across a resume; optional trackers refused with the
install command when their library is missing."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from gantk import Pipeline, SpecError
from tiny import tiny_spec


def _event_tags(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: dict[str, set[str]] = {}
    for events in folder.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent))
        acc.Reload()
        for kind, names in acc.Tags().items():
            if isinstance(names, list):
                tags.setdefault(kind, set()).update(names)
    return tags


def test_tensorboard_logger_writes_losses_scores_samples_and_spec(tmp_path):
    spec = tiny_spec("dcgan", [], device="cpu", steps=4, log_every=2, sample_every=2,
                     eval_every=4, eval_metrics=["fid"], eval_n=20, loggers=["tensorboard"])
    pipe = Pipeline.from_spec(spec)
    pipe.train(out=tmp_path / "run", progress=False)
    tags = _event_tags(tmp_path / "run" / "tensorboard")
    assert {"loss/d", "loss/g", "d/real", "d/fake", "eval/fid"} <= tags["scalars"], tags
    assert "samples" in tags["images"]
    assert any(t.startswith("spec") for t in tags["tensors"]), tags  # the resolved spec as text
    assert "final/loss/g" in tags["scalars"]  # the hparams summary's metric at the end
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss/g")] == [2, 4]
    assert [e.step for e in acc.Images("samples")] == [2, 4]


def test_no_logger_no_event_files(tmp_path):
    pipe = Pipeline.from_spec(tiny_spec("mlp", [], device="cpu"))
    pipe.train(out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_unknown_logger_is_refused_with_a_suggestion():
    with pytest.raises(SpecError, match="tensorboard") as info:
        Pipeline.from_spec(tiny_spec("mlp", [], device="cpu", loggers=["tensorbord"]))
    assert "train.loggers[0]" in str(info.value.paragraph())


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_optional_tracker_without_its_library_says_how_to_install_it(name, tmp_path):
    if importlib.util.find_spec(name) is not None:
        pytest.skip(f"{name} is installed here")
    pipe = Pipeline.from_spec(tiny_spec("mlp", [], device="cpu", loggers=[name]))
    with pytest.raises(SpecError, match=f"pip install {name}"):
        pipe.train(out=tmp_path / "run", progress=False)
    assert pipe.step == 0  # refused before any step


# ------------------------------------------------------------------------------ the real trackers, offline


def _tracked_spec(name, steps):
    return tiny_spec("dcgan", [], device="cpu", steps=steps, log_every=2, sample_every=2,
                     ckpt_every=2, loggers=[name])


def _train_then_resume(tmp_path, name):
    """A run of 4 steps, then the same run resumed to 6 (as a crash and restart would)."""
    run = tmp_path / "run"
    Pipeline.from_spec(_tracked_spec(name, 4)).train(out=run, progress=False)
    first = json.loads((run / name / "run.json").read_text())
    Pipeline.from_spec(_tracked_spec(name, 6)).train(out=run, progress=False)
    assert json.loads((run / name / "run.json").read_text())["run_id"] == first["run_id"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return run, first["run_id"], {r["step"]: r for r in rows}


def _wandb_records(path):
    """The protobuf records of an offline ``run-ID.wandb`` file (LevelDB log format: 32 KiB
    blocks of chunks, each with a 7-byte header: CRC, length, type; FULL=1, FIRST=2, LAST=4)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending, records = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the block's tail is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(pending)
            records.append(rec)
            pending = b""
    return records


def test_wandb_offline_logs_values_real_images_and_one_run_across_a_resume(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from PIL import Image

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run, run_id, rows = _train_then_resume(tmp_path, "wandb")
    sessions = sorted((run / "wandb").rglob("run-*.wandb"))
    assert len(sessions) == 2 and all(p.name == f"run-{run_id}.wandb" for p in sessions)
    logged = {}
    for path in sessions:
        for rec in _wandb_records(path):
            if rec.WhichOneof("record_type") == "history":
                items = {i.key or "/".join(i.nested_key): i.value_json for i in rec.history.item}
                if "loss/d" in items:
                    logged[int(items["_step"])] = float(items["loss/d"])
    assert set(logged) == {2, 4, 6}
    for step, value in logged.items():
        assert value == pytest.approx(rows[step]["loss/d"], rel=1e-6)
    pngs = sorted(run.rglob("media/images/samples_*.png"))
    assert pngs
    pixels = np.asarray(Image.open(pngs[0]).convert("L"), dtype=np.float64)
    # the generator's images at init sit around 0 in [-1, 1]: mid-grey, never all black
    assert 40 < pixels.mean() < 215 and pixels.std() > 1


def test_mlflow_logs_to_a_sqlite_store_in_the_run_and_resumes_the_same_run(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from PIL import Image

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    run, run_id, rows = _train_then_resume(tmp_path, "mlflow")
    db = run / "mlflow" / "mlflow.db"
    assert db.is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{db.resolve()}")
    exp = client.get_experiment_by_name("gantk")
    assert [r.info.run_id for r in client.search_runs([exp.experiment_id])] == [run_id]
    assert client.get_run(run_id).info.status == "FINISHED"
    history = {m.step: m.value for m in client.get_metric_history(run_id, "loss/d")}
    assert set(history) == {2, 4, 6}
    for step, value in history.items():
        assert value == pytest.approx(rows[step]["loss/d"], rel=1e-6)
    assert client.get_run(run_id).data.params["train.batch_size"] == "8"
    images = [a.path for a in client.list_artifacts(run_id, "images") if a.path.endswith(".png")]
    assert images
    local = client.download_artifacts(run_id, images[0], str(tmp_path / "dl"))
    pixels = np.asarray(Image.open(local).convert("L"), dtype=np.float64)
    assert 40 < pixels.mean() < 215 and pixels.std() > 1


def test_sample_grids_become_uint8_with_the_right_values():
    import torch

    from gantk_plugins.loggers.base import to_uint8_hwc

    grid = torch.tensor([0.0, 0.5, 1.0, 1.2]).view(1, 2, 2).expand(3, 2, 2)
    out = to_uint8_hwc(grid)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[..., 0].tolist() == [[0, 128], [255, 255]]


def test_the_tracker_run_id_file_round_trips_and_ignores_garbage(tmp_path):
    from gantk_plugins.loggers.base import read_run_id, write_run_id

    assert read_run_id(tmp_path) is None
    write_run_id(tmp_path / "wandb", {"run_id": "abc123"})
    assert read_run_id(tmp_path / "wandb") == {"run_id": "abc123"}
    (tmp_path / "wandb" / "run.json").write_text("not json")
    assert read_run_id(tmp_path / "wandb") is None
