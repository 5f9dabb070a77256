"""``gantk fid A B`` and ``gantk fid-stats``: folders, runs, data sets and .npz statistics give the
Frechet distance of the features a direct computation gives; the reference cache is reused across
--n-real; ``gantk eval --n-real``; a read-only run directory keeps its printed scores."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gantk import Pipeline
from gantk.metrics import inception as inc
from gantk.metrics.features import DigitsFeatures
from gantk.metrics.fid import frechet_distance, gaussian_stats
from tiny import tiny_spec


def _folder(path: Path, n: int, *, seed: int, scale: float = 1.0, side: int = 12) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    for i in range(n):
        img = (rng.random((side, side, 3)) * 255 * scale).astype("uint8")
        Image.fromarray(img).save(path / f"{i:03d}.png")
    return path


def _as_tensor(folder: Path) -> torch.Tensor:
    from PIL import Image

    arrays = [np.asarray(Image.open(f).convert("RGB")) for f in sorted(folder.glob("*.png"))]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1


def _fid_direct(net, x, y) -> float:
    fx = net(x, {"embedding"})["embedding"]
    fy = net(y, {"embedding"})["embedding"]
    return frechet_distance(*gaussian_stats(fx), *gaussian_stats(fy))



def _tiny_run(run: Path, steps: int) -> Pipeline:
    """A tiny dcgan on digits trained ``steps`` steps and saved as a run directory."""
    pipe = Pipeline.from_spec(tiny_spec("dcgan", [], device="cpu"))
    pipe.train(steps=steps, progress=False)
    pipe.save(run)
    return pipe


@pytest.fixture
def folders(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path / "cache"))
    return (_folder(tmp_path / "a", 30, seed=0), _folder(tmp_path / "b", 25, seed=1, scale=0.5))


def test_folder_vs_folder_equals_the_fid_of_the_features(folders, cli):
    a, b = folders
    code, out, err = cli("fid", a, b, "--features", "mnist", "--json")
    assert code == 0, err
    result = json.loads(out)
    net = DigitsFeatures(3, "cpu", "mnist")
    assert result["fid"] == pytest.approx(_fid_direct(net, _as_tensor(a), _as_tensor(b)), rel=1e-6)
    assert (result["n_a"], result["n_b"]) == (30, 25)
    assert result["feature_space"] == net.space
    code, out, _ = cli("fid", a, a, "--features", "mnist", "--json")
    assert json.loads(out)["fid"] == pytest.approx(0.0, abs=1e-6)


def test_a_smaller_or_larger_n_real_reuses_the_cached_features(folders, cli, monkeypatch):
    a, b = folders
    seen = []
    original = DigitsFeatures.__call__
    monkeypatch.setattr(DigitsFeatures, "__call__",
                        lambda self, batch, wanted: seen.append(len(batch)) or
                        original(self, batch, wanted))
    code, out, err = cli("fid", a, b, "--features", "mnist", "--n-real", "10", "--json")
    assert code == 0, err
    assert sum(seen) == 20
    seen.clear()
    code, out, _ = cli("fid", a, b, "--features", "mnist", "--n-real", "20", "--json")
    first = json.loads(out)
    assert first["cache_a"] == first["cache_b"] == "extended" and sum(seen) == 20  # 10 new a side
    seen.clear()
    code, out, _ = cli("fid", a, b, "--features", "mnist", "--n-real", "15", "--json")
    assert json.loads(out)["cache_a"] == "hit" and seen == []
    fresh = json.loads(cli("fid", a, b, "--features", "mnist", "--n-real", "20", "--no-cache",
                           "--json")[1])
    assert fresh["fid"] == pytest.approx(first["fid"], rel=1e-9)


def test_fid_stats_writes_mu_sigma_that_fid_reads(folders, cli, tmp_path):
    a, b = folders
    out_npz = tmp_path / "a_stats.npz"
    code, out, err = cli("fid-stats", a, out_npz, "--features", "mnist")
    assert code == 0, err
    assert "wrote" in out
    with np.load(out_npz, allow_pickle=False) as f:  # pytorch-fid / clean-fid's two keys
        assert f["mu"].shape == (192,) and f["sigma"].shape == (192, 192)
        meta = json.loads(str(f["meta"]))
    assert meta["n"] == 30 and meta["space"].startswith("gantk-mnist-classifier-v1")
    direct = json.loads(cli("fid", a, b, "--features", "mnist", "--json")[1])["fid"]
    via_file = json.loads(cli("fid", out_npz, b, "--features", "mnist", "--json")[1])
    assert via_file["fid"] == pytest.approx(direct, rel=1e-9) and via_file["cache_a"] == "file"
    # an existing file is kept unless --force
    code, _, err = cli("fid-stats", a, out_npz, "--features", "mnist")
    assert code == 2 and "--force" in err
    assert cli("fid-stats", a, out_npz, "--features", "mnist", "--force")[0] == 0
    # statistics of another space are refused, naming the file
    code, _, err = cli("fid", out_npz, b, "--features", "digits")
    assert code == 2 and str(out_npz) in err and "feature space" in err


def test_foreign_and_damaged_statistics_files(folders, cli, tmp_path):
    a, b = folders
    stats = tmp_path / "s.npz"
    cli("fid-stats", a, stats, "--features", "mnist")
    with np.load(stats) as f:
        mu, sigma = f["mu"], f["sigma"]
    foreign = tmp_path / "pytorch_fid.npz"
    np.savez(foreign, mu=mu, sigma=sigma)  # what pytorch-fid --save-stats writes
    code, out, err = cli("fid", foreign, b, "--features", "mnist")
    assert code == 0 and "does not say which feature space" in err
    for name, data in (("empty.npz", b""), ("half.npz", stats.read_bytes()[:500]),
                       ("junk.npz", b"PK\x03\x04 not really a zip")):
        (tmp_path / name).write_bytes(data)
        code, out, err = cli("fid", tmp_path / name, b, "--features", "mnist")
        assert code == 2 and str(tmp_path / name) in err and "Traceback" not in err
    np.savez(tmp_path / "wrong.npz", mu=mu[:5], sigma=sigma)
    code, _, err = cli("fid", tmp_path / "wrong.npz", b, "--features", "mnist")
    assert code == 2 and "not a mean and a covariance" in err


def test_run_vs_data_set_equals_gantk_evaluate(tmp_path, cli, monkeypatch):
    from gantk.metrics.evaluate import evaluate

    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path / "cache"))
    pipe = _tiny_run(tmp_path / "run", steps=2)
    code, out, err = cli("fid", tmp_path / "run", "digits", "--data-set", "resolution=16",
                         "--features", "digits", "--n", "64", "--batch-size", "32", "--json")
    assert code == 0, err
    result = json.loads(out)
    expected = evaluate(pipe, ["fid"], n=64, n_real=10_000, seed=0, batch_size=32,
                        feature_net="digits")
    assert result["fid"] == pytest.approx(expected["fid"], rel=1e-9)
    assert (result["n_a"], result["n_b"]) == (64, 1797) and result["cache_a"] == "generated"
    # the same run against statistics of the data set
    stats = tmp_path / "digits16.npz"
    assert cli("fid-stats", "digits", stats, "--data-set", "resolution=16",
               "--features", "digits")[0] == 0
    code, out, _ = cli("fid", tmp_path / "run", stats, "--features", "digits", "--n", "64",
                       "--batch-size", "32", "--json")
    assert json.loads(out)["fid"] == pytest.approx(expected["fid"], rel=1e-9)


def test_sources_that_are_none_of_the_kinds_are_refused(tmp_path, cli):
    code, _, err = cli("fid", "no_such_thing", "digits")
    assert code == 2 and "no_such_thing" in err and "mnist5k" in err  # lists the data sets
    (tmp_path / "notes.txt").write_text("x")
    code, _, err = cli("fid", tmp_path / "notes.txt", "digits")
    assert code == 2 and "notes.txt" in err


def test_gantk_eval_n_real_and_a_run_directory_that_cannot_be_written(tmp_path, cli, monkeypatch):
    from gantk.base.safeio import RunDirError
    from gantk.metrics import evaluate as ev

    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path / "cache"))
    pipe = _tiny_run(tmp_path / "run", steps=1)
    code, out, err = cli("eval", tmp_path / "run", "--metrics", "fid", "--n", "40",
                         "--n-real", "120", "--json", "--no-progress")
    assert code == 0, err
    assert json.loads(out)["n_real"] == 120
    row = json.loads((tmp_path / "run" / "eval.jsonl").read_text().splitlines()[-1])
    assert row["n_real"] == 120
    before = (tmp_path / "run" / "eval.jsonl").read_text()

    def read_only(path, row):
        raise RunDirError("permission denied: cannot write the file", where=str(path),
                          fix="check the folder's permissions.")

    monkeypatch.setattr(ev, "append_jsonl", read_only)
    code, out, err = cli("eval", tmp_path / "run", "--metrics", "fid", "--n", "40",
                         "--no-progress")
    assert code == 2
    assert "fid" in out and "appended" not in out  # the scores are printed ...
    assert "could not be appended" in err and "permission denied" in err  # ... and the failure said
    assert (tmp_path / "run" / "eval.jsonl").read_text() == before


@pytest.mark.slow
def test_fid_defaults_to_the_inception_net_on_verified_weights(folders, cli, tmp_path,
                                                               monkeypatch):
    """Default features on two folders: torch-fidelity's Inception on the (here random, digest
    monkeypatched) weights, from a folder named by $GANTK_INCEPTION_WEIGHTS."""
    from test_inception import _random_inception_state

    weights = _random_inception_state(tmp_path / "w")
    named = weights.with_name(inc.INCEPTION_FILE)
    weights.rename(named)
    monkeypatch.setattr(inc, "INCEPTION_SHA256", hashlib.sha256(named.read_bytes()).hexdigest())
    monkeypatch.setenv(inc.ENV_INCEPTION, str(named.parent))
    inc._STATE.clear()
    a, b = (_folder(tmp_path / s, 3, seed=i, side=8) for i, s in enumerate("xy"))
    code, out, err = cli("fid", a, b, "--json")
    assert code == 0, err
    result = json.loads(out)
    net = inc.InceptionNet(named)
    assert result["feature_space"] == inc.INCEPTION_SPACE
    assert result["fid"] == pytest.approx(_fid_direct(net, _as_tensor(a), _as_tensor(b)), rel=1e-5)


def test_a_changed_image_in_a_folder_is_not_served_from_the_cache(folders, cli):
    import os

    a, b = folders
    first = json.loads(cli("fid", a, b, "--features", "mnist", "--json")[1])
    assert json.loads(cli("fid", a, b, "--features", "mnist", "--json")[1])["cache_a"] == "hit"
    _folder(a.parent / "other", 1, seed=9)
    (a.parent / "other" / "000.png").replace(a / "000.png")  # same name, other pixels
    st = os.stat(a / "000.png")
    os.utime(a / "000.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = json.loads(cli("fid", a, b, "--features", "mnist", "--json")[1])
    assert again["cache_a"] == "stored" and again["cache_b"] == "hit"
    assert again["fid"] != first["fid"]


def test_which_data_set_opens_a_path(tmp_path):
    from gantk import get_plugin_manager
    from gantk.metrics import fid_inputs as fi

    registry = get_plugin_manager().registry
    (tmp_path / "imgs").mkdir()
    assert fi._path_dataset(tmp_path / "imgs", registry) == ("image_folder", "root")
    assert fi._path_dataset(tmp_path / "faces.zip", registry) == ("image_folder", "root")
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "state.json").write_text("{}")
    assert fi._path_kind(hf) == "hf"
    expected = ("hf_dataset", "path") if "hf_dataset" in registry.names("dataset") \
        else ("image_folder", "root")
    assert fi._path_dataset(hf, registry) == expected
    with pytest.raises(Exception, match="neither a folder of images nor an archive"):
        fi._path_dataset(tmp_path / "notes.txt", registry)


def test_a_greyscale_folder_meets_a_greyscale_data_set_in_a_classifier_space(tmp_path, cli,
                                                                          monkeypatch):
    """Images written from the digits data set itself, scored against `digits` with the digits
    classifier: the folder is read with the data set's one channel (it was refused for unequal
    channel counts), and the FID is that of the same pixels (the PNGs round to 8 bits)."""
    from PIL import Image

    from gantk.datasets.sources import DigitsParams, load_digits

    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path / "cache"))
    x, _ = load_digits(DigitsParams(resolution=16))
    folder = tmp_path / "grey"
    folder.mkdir()
    pixels = ((x[:400, 0].numpy() + 1) * 127.5).round().clip(0, 255).astype("uint8")
    for i, img in enumerate(pixels):
        Image.fromarray(img, mode="L").save(folder / f"{i:03d}.png")
    stored = torch.from_numpy(pixels).float().unsqueeze(1) / 127.5 - 1  # what the folder holds
    code, out, err = cli("fid", folder, "digits", "--data-set", "resolution=16",
                         "--features", "digits", "--json")
    assert code == 0, err
    result = json.loads(out)
    net = DigitsFeatures(1, "cpu", "digits")
    assert result["fid"] == pytest.approx(_fid_direct(net, stored, x), rel=1e-6)
    assert (result["n_a"], result["n_b"]) == (400, 1797)
    # two folders are both read as RGB, as before
    rgb = _folder(tmp_path / "rgb", 10, seed=0)
    code, _, err = cli("fid", rgb, folder, "--features", "digits")
    assert code == 0, err
