"""Logger plugins on the event hooks: TensorBoard event files with the expected tags; optional
trackers refused with the install command when their library is missing."""

from __future__ import annotations

import importlib.util

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
