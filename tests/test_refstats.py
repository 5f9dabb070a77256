"""Cached reference statistics: computed once, reused, invalidated when the data or the feature
net changes; --ref test where a data set has both splits; eval records the transforms applied."""

from __future__ import annotations

import json

import pytest
import torch

from gantk import Pipeline, SpecError
from gantk.metrics.evaluate import evaluate
from gantk.metrics import features
from gantk.metrics.refstats import cache_dir
from tiny import tiny_spec


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "ref_stats"


@pytest.fixture(scope="module")
def pipe():
    p = Pipeline.from_spec(tiny_spec("dcgan", [], device="cpu"))
    p.train(steps=2, progress=False)
    return p


def test_reference_features_are_reused_and_give_the_same_scores(pipe, cache, real_calls):
    first = evaluate(pipe, ["fid", "prdc"], n=60, seed=0)
    assert first["ref_cache"] == "stored" and len(list(cache.glob("*.npz"))) == 1
    real_calls.clear()
    again = evaluate(pipe, ["fid", "prdc"], n=60, seed=0)
    assert again["ref_cache"] == "hit"
    assert sum(real_calls) == 60  # only the generated samples went through the net
    for key in ("fid", "precision", "recall", "density", "coverage"):
        assert again[key] == pytest.approx(first[key], rel=1e-12)
    assert cache_dir() == cache


@pytest.fixture
def real_calls(monkeypatch):
    """Rows each DigitsFeatures call saw (reals and fakes alike)."""
    calls = []
    original = features.DigitsFeatures.__call__

    def counting(self, batch, wanted):
        calls.append(len(batch))
        return original(self, batch, wanted)

    monkeypatch.setattr(features.DigitsFeatures, "__call__", counting)
    return calls


def test_another_n_real_or_seed_computes_only_the_rows_the_cache_lacks(pipe, cache, real_calls):
    evaluate(pipe, ["fid"], n=60, seed=0, batch_size=1000)
    assert real_calls == [60, 60]  # reals, then fakes
    real_calls.clear()
    smaller = evaluate(pipe, ["fid"], n=40, n_real=50, seed=0, batch_size=1000)
    assert smaller["ref_cache"] == "hit" and real_calls == [40]  # a subset of the cached rows
    real_calls.clear()
    larger = evaluate(pipe, ["fid"], n=40, n_real=80, seed=0, batch_size=1000)
    assert larger["ref_cache"] == "extended" and real_calls == [20, 40]  # only the 20 new rows
    assert len(list(cache.glob("*.npz"))) == 1  # one file per (data, net), grown in place
    real_calls.clear()
    other_seed = evaluate(pipe, ["fid"], n=40, n_real=80, seed=1, batch_size=1000)
    assert other_seed["ref_cache"] == "extended" and real_calls[0] < 80
    # the cached rows give the scores a fresh computation gives
    for n_real, seed in ((50, 0), (80, 0), (80, 1)):
        fresh = evaluate(pipe, ["fid"], n=40, n_real=n_real, seed=seed, cache=False)
        cached = evaluate(pipe, ["fid"], n=40, n_real=n_real, seed=seed)
        assert cached["ref_cache"] == "hit" and cached["n_real"] == n_real
        assert cached["fid"] == pytest.approx(fresh["fid"], rel=1e-9)


def test_the_cache_is_invalidated_by_other_data_or_another_net(pipe, cache, monkeypatch):
    evaluate(pipe, ["fid"], n=60, seed=0)
    assert evaluate(pipe, ["fid"], n=60, seed=0)["ref_cache"] == "hit"
    # the data on disk changes: same spec, other images
    x, y = pipe.real_data()
    with monkeypatch.context() as m:
        m.setattr(pipe, "_data", (x.flip(3), y))
        assert evaluate(pipe, ["fid"], n=60, seed=0)["ref_cache"] == "stored"
    assert evaluate(pipe, ["fid"], n=60, seed=0)["ref_cache"] == "hit"
    # new weights of the feature net
    monkeypatch.setattr(features.DigitsFeatures, "identity", lambda self: "retrained-classifier")
    assert evaluate(pipe, ["fid"], n=60, seed=0)["ref_cache"] == "stored"


def _half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage_zip(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("meta.npy", b"\x93NUMPY garbage")


def _short_arrays(path):
    import numpy as np

    with np.load(path) as f:
        parts = {k: f[k] for k in f.files}
    parts["embedding"] = parts["embedding"][:-3]
    with open(path, "wb") as fh:
        np.savez(fh, **parts)


@pytest.mark.parametrize("damage", [lambda p: p.write_bytes(b""), _half, _garbage_zip,
                                    lambda p: p.write_bytes(b"not an npz"), _short_arrays],
                         ids=["empty", "half-written", "garbage-zip", "not-npz", "short-arrays"])
def test_a_damaged_cache_file_is_reported_in_one_line_and_recomputed(pipe, cache, capsys, damage):
    first = evaluate(pipe, ["fid"], n=40, seed=0)
    (path,) = cache.glob("*.npz")
    damage(path)
    capsys.readouterr()
    again = evaluate(pipe, ["fid"], n=40, seed=0)
    err = capsys.readouterr().err.strip().splitlines()
    assert again["ref_cache"] == "recomputed" and again["fid"] == pytest.approx(first["fid"])
    assert len(err) == 1 and str(path) in err[0] and "damaged" in err[0]
    third = evaluate(pipe, ["fid"], n=40, seed=0)  # the rewritten file is whole again
    assert third["ref_cache"] == "hit" and capsys.readouterr().err == ""


def test_weights_digest_changes_with_the_file(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 10)
    d1 = features.file_digest(f)
    f.write_bytes(b"a" * 9 + b"b")
    assert features.file_digest(f) != d1


def test_ref_test_is_refused_for_data_without_a_split(pipe):
    with pytest.raises(SpecError, match="no test split"):
        evaluate(pipe, ["fid"], n=40, ref="test")


def test_ref_test_scores_against_the_other_split(monkeypatch):
    from gantk.metrics.evaluate import reference_data

    class Params:  # a data part whose options have a split, as torchvision sets do
        model_fields = {"split": None}

        def __init__(self, split):
            self.split = split

        def model_copy(self, update):
            return Params(update["split"])

    class Entry:
        name = "fake"

        @staticmethod
        def factory(params):
            return torch.full((3, 1, 2, 2), 1.0 if params.split == "test" else 0.0), None

    class Pipe:
        resolved = type("R", (), {"data": type("P", (), {"entry": Entry, "params": Params("train")})})

        def real_data(self):
            return Entry.factory(Params("train"))

    assert float(reference_data(Pipe(), "train").mean()) == 0.0
    assert float(reference_data(Pipe(), "test").mean()) == 1.0


def test_cli_eval_records_stack_transforms_and_ref(tmp_path, cli, cache):
    spec = tiny_spec("dcgan", [{"name": "advlat_z", "steps": 2}], device="cpu")
    pipe = Pipeline.from_spec(spec)
    pipe.train(steps=1, progress=False)
    pipe.save(tmp_path / "run")
    code, out, err = cli("eval", tmp_path / "run", "--metrics", "fid", "--n", "40")
    assert code == 0, err
    row = json.loads((tmp_path / "run" / "eval.jsonl").read_text().splitlines()[-1])
    (applied,) = row["with"]  # the stack's own transform, with its resolved options
    assert (applied["name"], applied["steps"], applied["from"]) == ("advlat_z", 2, "stack")
    assert row["ref"] == "train" and row["ref_cache"] == "stored"
    assert "sampled with advlat_z" in out
    code, out, _ = cli("eval", tmp_path / "run", "--metrics", "fid", "--n", "40", "--no-progress")
    assert "cached features reused" in out
