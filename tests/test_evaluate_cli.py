"""evaluate() on known samplers, the feature-space choice, and `gantk eval` / `gantk plot` on a
real run directory."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from gantk.base.errors import GantkError, SpecError
from gantk.metrics.evaluate import (default_metrics, evaluate, metric_direction, resolve_metric_names)
from gantk.base.interfaces import DataInfo
from gantk.metrics import MetricError
from gantk.metrics import digits_classifier as dc
from gantk.metrics import features as feats

RING = torch.tensor([[2 * math.cos(i * math.pi / 4), 2 * math.sin(i * math.pi / 4)]
                     for i in range(8)])
RING_INFO = DataInfo(shape=(2,), kind="points", modes=RING, mode_std=0.001)


class FakePipeline:
    """The attributes evaluate() reads, around a sampler function."""

    def __init__(self, info, name, real, sampler):
        self.data_info, self._real, self._sampler = info, real, sampler
        self.spec = SimpleNamespace(data=SimpleNamespace(name=name, options={}))
        self.device = torch.device("cpu")
        self.batches: list[int] = []
        self.with_ = None

    def real_data(self):
        return self._real, None

    def sample_batches(self, n, *, batch_size=500, with_=None):
        self.with_ = with_
        done = 0
        while done < n:
            b = min(batch_size, n - done)
            self.batches.append(b)
            done += b
            yield self._sampler(b)


def ring_sampler(b):
    return RING[torch.randint(8, (b,))] + 0.001 * torch.randn(b, 2)


DOWNLOADS: list[str] = []


@pytest.fixture(autouse=True)
def no_inception(monkeypatch, tmp_path):
    """No Inception weights anywhere (torch.hub's folder is an empty one), and no network: a
    download attempt is recorded and fails as it would offline."""

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(feats.ENV_INCEPTION, raising=False)
    monkeypatch.delenv("GANTK_OFFLINE", raising=False)
    DOWNLOADS.clear()

    def no_network(url, *args, **kwargs):
        DOWNLOADS.append(url)
        raise OSError("Network is unreachable")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)


# ---------------------------------------------------------------------------- points


def test_ring_perfect_and_collapsed_samplers_in_batches():
    torch.manual_seed(0)
    real = ring_sampler(2000)
    pipe = FakePipeline(RING_INFO, "ring", real, ring_sampler)
    out = evaluate(pipe, n=2000, batch_size=250, seed=0)
    assert pipe.batches == [250] * 8  # generated and scored in bounded batches
    assert out["feature_space"] == "raw-2d" and out["modes_space"] == "raw-2d"
    assert out["modes_covered"] == 8
    assert out["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert out["reverse_kl"] < 0.01
    assert out["precision"] > 0.9 and out["coverage"] > 0.9
    again = evaluate(pipe, n=2000, batch_size=250, seed=0)  # same seed, same samples, same scores
    assert {k: v for k, v in again.items() if k != "seconds"} == \
        {k: v for k, v in out.items() if k != "seconds"}

    collapsed = FakePipeline(RING_INFO, "ring", real, lambda b: RING[:1].repeat(b, 1))
    out = evaluate(collapsed, ["modes", "coverage"], n=1000, with_=["advlat_z"])
    assert collapsed.with_ == ["advlat_z"]  # post-training transforms reach the sampler
    assert out["modes_covered"] == 1 and out["reverse_kl"] == pytest.approx(math.log(8))
    # only real points of that one mode can have the centre inside their k-NN ball
    assert 0 < out["coverage"] <= 1 / 8


def test_metric_names_directions_and_errors():
    assert resolve_metric_names(["coverage,precision", "fid"]) == ["prdc", "fid"]
    assert metric_direction("fid") == "min" and metric_direction("eval/coverage") == "max"
    assert metric_direction("reverse_kl") == "min" and metric_direction("is") == "max"
    with pytest.raises(SpecError, match="did you mean 'fid'"):
        resolve_metric_names(["fdi"])
    with pytest.raises(SpecError, match="not a score"):
        metric_direction("jsd_bins")
    pipe = FakePipeline(RING_INFO, "ring", ring_sampler(100), ring_sampler)
    with pytest.raises(MetricError, match="Inception Score needs a classifier"):
        evaluate(pipe, ["is"], n=100)
    assert default_metrics(RING_INFO, "ring") == ["modes", "prdc"]
    with pytest.raises(MetricError, match="for images"):
        evaluate(pipe, ["prdc"], n=100, feature_net="digits")


# ---------------------------------------------------------------------------- digits


def digits_at(size: int) -> torch.Tensor:
    x = torch.from_numpy(dc.load_digits_arrays()[0])
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(-1, 1)


def test_digits_perfect_sampler_beats_noise_in_the_classifier_space():
    real = digits_at(16)
    info = DataInfo(shape=(1, 16, 16), num_classes=10)
    g = torch.Generator().manual_seed(0)

    def near_real(b):
        return (real[torch.randint(len(real), (b,), generator=g)]
                + 0.05 * torch.randn(b, 1, 16, 16, generator=g)).clamp(-1, 1)

    metrics, opts = ["fid", "prdc", "is", "modes", "jsd"], {"jsd": {"bins": 20}}
    good = evaluate(FakePipeline(info, "digits", real, near_real), metrics, n=1000, seed=0,
                    options=opts)
    noise = evaluate(FakePipeline(info, "digits", real, lambda b: torch.rand(b, 1, 16, 16) * 2 - 1),
                     metrics, n=1000, seed=0, options=opts)
    assert good["feature_space"] == "gantk-digits-classifier-v1 penultimate (64-d)"
    assert good["is_space"].startswith("gantk-digits-classifier-v1")
    assert feats.INCEPTION_FILE in good["note"]  # the other space is said out loud
    assert DOWNLOADS == []  # digits use the shipped classifier: nothing is fetched
    assert good["modes_covered"] == 10 and good["modes_total"] == 10
    assert good["is"] > 8.0  # 10 is the ceiling for 10 balanced, confident classes
    assert good["precision"] > 0.9 and good["coverage"] > 0.9 and good["jsd"] < 0.1
    assert 0.8 < good["density"] < 1.3 and good["recall"] > 0.9
    assert noise["fid"] > 20 * good["fid"] and noise["is"] < 3
    # noise lands in a tight clump amid the real features, inside the balls of real outliers:
    # precision stays high (0.7 here), density and coverage see through it (Naeem et al. 2020)
    assert noise["density"] < 0.3 and noise["coverage"] < 0.05 and noise["recall"] < 0.05
    assert noise["jsd"] > 0.3
    assert default_metrics(info, "digits") == ["fid", "kid", "prdc", "jsd", "is", "modes"]


def test_stacked_digits_mode_counts():
    single = torch.from_numpy(dc.load_digits_arrays()[0])
    info = DataInfo(shape=(3, 8, 8))
    g = torch.Generator().manual_seed(0)

    def triples(b):
        idx = torch.randint(len(single), (b, 3), generator=g)
        return torch.cat([single[idx[:, c]] for c in range(3)], 1)

    real = triples(100)
    out = evaluate(FakePipeline(info, "digits", real, triples), ["modes", "is"], n=3000)
    assert out["n_real"] == 0  # neither score looks at the real set
    # 3000 uniform draws over 1000 triples leave 1000 e^-3 = 50 unseen in expectation (sd ~7;
    # the classifier's 1.4% errors per digit move some samples between triples)
    assert 915 <= out["modes_covered"] <= 975 and out["modes_total"] == 1000
    # empirical KL of 3000 uniform draws to uniform is about (K - 1) / (2n) = 0.17
    assert out["reverse_kl"] < 0.3
    # IS is capped by the distinct labels of a split: 300 draws hit ~1000 (1 - e^-0.3) = 259
    assert 180 < out["is"] < 260
    assert "feature_space" not in out  # no embedding was needed, none is named
    fixed = real[:1]
    collapsed = evaluate(FakePipeline(info, "digits", real, lambda b: fixed.repeat(b, 1, 1, 1)),
                         ["modes"], n=300)
    assert collapsed["modes_covered"] == 1
    assert collapsed["reverse_kl"] == pytest.approx(math.log(1000))


# ---------------------------------------------------------------------------- Inception


class FakeExtractor(torch.nn.Module):
    """torch-fidelity's extractor's interface (uint8 RGB in, pool3 features and 1008 logits out)
    without its 24M weights: exercises gantk's choice, loading checks and feeding code."""

    def forward(self, x: torch.Tensor):
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        pooled = F.adaptive_avg_pool2d(x.float() / 128 - 1, 4).flatten(1)  # (N, 48)
        feats_ = pooled.repeat(1, 43)[:, :2048]
        return feats_, feats_[:, :1008] * 3


def test_inception_is_fetched_verified_and_fed(tmp_path, monkeypatch):
    from gantk.metrics import inception as inc

    info = DataInfo(shape=(3, 8, 8))
    real = torch.rand(40, 3, 8, 8) * 2 - 1
    pipe = FakePipeline(info, "folder", real, lambda b: torch.rand(b, 3, 8, 8) * 2 - 1)
    # offline without the file: one paragraph naming the file, the address and the digest
    assert default_metrics(info, "folder") == ["fid", "kid", "prdc", "is"]
    with pytest.raises(MetricError) as exc:
        evaluate(pipe, n=40)
    for part in (inc.INCEPTION_FILE, inc.INCEPTION_URLS[0], inc.INCEPTION_SHA256,
                 str(tmp_path / "torch_home" / "hub" / "checkpoints")):
        assert part in str(exc.value)
    assert DOWNLOADS[0] == inc.INCEPTION_URLS[0]
    with pytest.raises(MetricError, match="no Inception weights file at"):
        evaluate(pipe, ["fid"], n=40, inception=str(tmp_path / "nowhere.pth"))

    # a file in torch.hub's folder is used only when its SHA-256 is the pinned one
    weights = tmp_path / "torch_home" / "hub" / "checkpoints" / inc.INCEPTION_FILE
    weights.parent.mkdir(parents=True, exist_ok=True)  # the failed download made the folder
    torch.save({"w": torch.ones(3)}, weights)
    with pytest.raises(MetricError, match="not loaded"):
        evaluate(pipe, ["prdc"], n=40)
    monkeypatch.setattr(inc, "INCEPTION_SHA256", hashlib.sha256(weights.read_bytes()).hexdigest())
    built = []
    monkeypatch.setattr(inc, "build_extractor",
                        lambda path, device="cpu": built.append(path) or FakeExtractor())
    out = evaluate(pipe, ["kid", "prdc", "is"], n=40, batch_size=16,
                   options={"kid": {"num_subsets": 5}, "is": {"splits": 2}})
    assert built == [weights]
    assert out["feature_space"] == inc.INCEPTION_SPACE
    assert out["is_space"].startswith("inception-v3")
    assert 1 <= out["is"] <= 1008 and 0 <= out["coverage"] <= 1 and "note" not in out
    # digits data use Inception only when its weights are named (or --features inception)
    dinfo = DataInfo(shape=(1, 8, 8))
    dpipe = FakePipeline(dinfo, "digits", torch.from_numpy(dc.load_digits_arrays()[0][:60]),
                         lambda b: torch.rand(b, 1, 8, 8) * 2 - 1)
    assert evaluate(dpipe, ["prdc"], n=30)["feature_space"].startswith("gantk-digits")
    assert evaluate(dpipe, ["prdc"], n=30, feature_net="inception")["feature_space"] == \
        inc.INCEPTION_SPACE
    monkeypatch.setenv(feats.ENV_INCEPTION, str(weights.parent))
    assert evaluate(dpipe, ["prdc"], n=30)["feature_space"] == inc.INCEPTION_SPACE
    assert evaluate(dpipe, ["prdc"], n=30, feature_net="digits")["feature_space"].startswith(
        "gantk-digits")
    assert DOWNLOADS == [inc.INCEPTION_URLS[0], inc.INCEPTION_URLS[1]]  # only the offline try


# ---------------------------------------------------------------------------- CLI on a real run


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    from gantk.facade.pipeline import Pipeline

    run = tmp_path_factory.mktemp("run") / "ring"
    pipe = Pipeline.from_spec({
        "stack": "backbone=mlp + loss=ns + data=ring", "seed": 0,
        "train": {"steps": 10, "batch_size": 64, "log_every": 5, "sample_every": 0,
                  "ckpt_every": 0, "eval_every": 5, "eval_metrics": ["modes", "prdc"],
                  "eval_n": 200, "best_metric": "coverage", "device": "cpu"}})
    pipe.train(out=run, progress=False)
    return run


def test_eval_command_matches_pipe_evaluate_and_is_recorded(ring_run, capsys):
    from gantk.cli.app import main
    from gantk.facade.pipeline import Pipeline

    assert [r["step"] for r in map(json.loads, (ring_run / "eval.jsonl").read_text().splitlines())
            ] == [5, 10]  # eval_every during training
    assert (ring_run / "checkpoints" / "best.safetensors").exists()

    assert main(["eval", str(ring_run), "--n", "300", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    rows = [json.loads(x) for x in (ring_run / "eval.jsonl").read_text().splitlines()]
    assert rows[-1]["source"] == "gantk eval" and rows[-1]["step"] == 10
    assert rows[-1]["modes_covered"] == printed["modes_covered"]
    same = Pipeline.load(ring_run).evaluate(n=300, seed=0)
    for key in ("modes_covered", "high_quality", "precision", "recall", "density", "coverage"):
        assert same[key] == printed[key]

    assert main(["eval", str(ring_run), "--n", "200", "--metrics", "coverage",
                 "--metric-set", "prdc.nearest_k=3"]) == 0
    table = capsys.readouterr().out
    assert "coverage" in table and "raw-2d" in table and "precision" in table
    last = json.loads((ring_run / "eval.jsonl").read_text().splitlines()[-1])
    assert last["options"] == {"prdc": {"nearest_k": 3}} and last["metrics"] == ["prdc"]


def test_eval_without_n_uses_the_data_default(ring_run, capsys):
    from gantk.cli.app import main

    assert main(["eval", str(ring_run), "--metrics", "modes", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert 0 <= printed["modes_covered"] <= 8
    last = json.loads((ring_run / "eval.jsonl").read_text().splitlines()[-1])
    assert last["source"] == "gantk eval" and last["n"] == 10_000


def test_eval_and_plot_errors_and_plots(ring_run, tmp_path, capsys):
    from gantk.cli.app import main

    assert main(["eval", str(ring_run), "--metrics", "fdi", "--n", "50"]) == 2
    assert "did you mean 'fid'" in capsys.readouterr().err.replace("\n", " ")

    assert main(["plot", str(ring_run)]) == 0
    for name in ("losses.png", "metrics.png"):
        assert (ring_run / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert main(["plot", str(empty)]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "metrics.jsonl" in err and "gantk train" in err
    with pytest.raises(GantkError, match="no such run directory"):
        main(["plot", str(tmp_path / "missing"), "--debug"])


def test_plot_draws_lines_marks_single_evaluations_and_prints_the_rest(ring_run, tmp_path, capsys):
    from gantk.cli.app import main
    from gantk.cli.plot_cmd import score_series

    rows = [{"step": 5, "fid": 3.0, "feature_space": "digits", "source": "eval_every"},
            {"step": 10, "fid": 2.0, "feature_space": "digits", "source": "eval_every"},
            {"step": 10, "fid": 2.5, "kid": 0.1, "feature_space": "digits", "source": "gantk eval"},
            {"step": 10, "kid": float("nan"), "feature_space": "inception", "source": "gantk eval"}]
    lines, singles = score_series(rows)
    assert lines == {"fid": {"digits [eval_every]": [(5, 3.0), (10, 2.0)]}}
    assert singles == [("fid", "digits [gantk eval]", 10, 2.5), ("kid", "digits [gantk eval]", 10, 0.1)]

    both = tmp_path / "both"  # a curve and a lone `gantk eval` of the same score: a star on it
    both.mkdir()
    (both / "metrics.jsonl").write_text((ring_run / "metrics.jsonl").read_text())
    (both / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["plot", str(both)]) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert "lines for fid; 1 single evaluation marked with a star" in out
    assert "evaluated once" in out and "kid" in out and "0.100" in out  # kid has no curve: printed
    assert (both / "plots" / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    once = tmp_path / "once"  # a run evaluated once: printed, no figure of lone dots
    once.mkdir()
    (once / "metrics.jsonl").write_text((ring_run / "metrics.jsonl").read_text())
    (once / "eval.jsonl").write_text(json.dumps(rows[2]) + "\n")
    assert main(["plot", str(once)]) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert "evaluated once" in out and "2.50" in out and "0.100" in out
    assert "metrics.png not written" in out and "train.eval_every" in out
    assert not (once / "plots" / "metrics.png").exists() and (once / "plots" / "losses.png").is_file()
