"""Multi-process training on CPU with gloo, 2 processes (what torchrun launches, in-process).

The fast test checks gradient averaging (2 processes end with the parameters 1 process reaches on
the same global batch and data order) and what rank 0 alone writes; the slow ones stop a run on
one rank's NaN, train every method, score evaluations across ranks and kill a torchrun worker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import dist_helpers as dh
from gantk import Pipeline, get_registry
from gantk.train.distributed import share_sizes, share_slice
from gantk.base.errors import IncompatibleStackError
from gantk.stack.registry import STACKABLE
from tiny import tiny_spec


def test_shares_cover_the_batch_once():
    assert share_sizes(7, 2) == [4, 3] and share_sizes(8, 3) == [3, 3, 2]
    covered = [i for r in range(3) for i in range(10)[share_slice(10, r, 3)]]
    assert covered == list(range(10))


def _ring(steps: int = 4, **train) -> dict:
    return {"stack": "backbone=mlp + loss=ns + data=ring", "seed": 0,
            "backbone": {"hidden": [32, 32]}, "data": {"per_mode": 40},
            "train": {"steps": steps, "batch_size": 64, "log_every": 1, "sample_every": 0,
                      "ckpt_every": 2, "keep_checkpoints": 5, "device": "cpu", **train}}


def test_two_processes_match_one_and_only_rank_zero_writes(tmp_path):
    spec = _ring(steps=4, n_critic=2)
    one = Pipeline.from_spec(spec, device="cpu")
    one.train(out=tmp_path / "one", progress=False)
    dump = tmp_path / "dump"
    dump.mkdir()
    dh.spawn(dh.train_and_save, 2, spec, str(tmp_path / "two"), str(dump))
    ref = dh.params_of(one)
    for r in range(2):
        got = torch.load(dump / f"rank{r}.pt")
        for k, v in ref.items():
            assert torch.allclose(got[k], v, atol=2e-5, rtol=1e-4), (r, k, (got[k] - v).abs().max())
    # rank 0 alone writes: one metrics row per logged step, one checkpoint per save
    rows = [json.loads(ln) for ln in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    ref_rows = [json.loads(ln) for ln in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    for got, want in zip(rows, ref_rows):  # logged losses are means over the global batch
        for key in ("loss/d", "loss/g", "d/real", "d/fake"):
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key
    ckpts = sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir())
    assert ckpts == ["step_00000002.safetensors", "step_00000004.safetensors"]
    assert len(list((tmp_path / "two" / "samples").iterdir())) == 1
    # the checkpoint resumes in one process, continuing the same run (one process's global RNG
    # stream carries on where the ranks' shared stream stopped)
    one.train(steps=1, progress=False)
    resumed = Pipeline.from_spec({**spec, "train": {**spec["train"], "steps": 5}}, device="cpu")
    resumed.train(out=tmp_path / "two", progress=False)
    for k, v in dh.params_of(one).items():
        assert torch.allclose(dh.params_of(resumed)[k], v, atol=2e-5, rtol=1e-4), k


@pytest.mark.slow
def test_nan_on_one_rank_stops_every_rank_and_keeps_the_checkpoint(tmp_path):
    spec = _ring(steps=6, ckpt_every=1)
    dump = tmp_path / "dump"
    dump.mkdir()
    dh.spawn(dh.nan_on_one_rank, 2, spec, str(tmp_path / "run"), str(dump))
    outcomes = [json.loads((dump / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(o["stopped"] and o["step"] == 2 for o in outcomes), outcomes
    assert "non-finite" in outcomes[1]["message"] and "another process" in outcomes[0]["message"]
    pipe = Pipeline.load(tmp_path / "run", device="cpu")
    assert pipe.step == 2  # the last checkpoint is the one before the bad step, intact


def _method_specs() -> dict[str, dict]:
    registry = get_registry()
    specs = {}
    for method in registry.names(STACKABLE):
        options = {"advlat_z": {"steps": 2}, "reverser": {"steps": 2, "progress": False}}
        for backbone in ("dcgan", "mlp", "autoencoder"):
            spec = tiny_spec(backbone, [{"name": method, **options.get(method, {})}],
                             device="cpu", batch_size=8)
            entry = registry.entries[method]
            if entry.needs & {"labels", "conditional"}:
                spec["backbone"]["conditional"] = True
            try:
                Pipeline.from_spec(spec, device="cpu")
            except IncompatibleStackError:
                continue
            specs[method] = spec
            break
    return specs


@pytest.mark.slow
def test_every_method_trains_two_steps_on_two_processes(tmp_path):
    specs = _method_specs()
    assert {"advlat_qua", "advlat_div", "clr", "acl"} <= set(specs), sorted(specs)
    dh.spawn(dh.train_each, 2, specs, str(tmp_path))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for name in specs:
        assert "error" not in ranks[0][name], ranks[0][name].get("error")
        assert "error" not in ranks[1][name], ranks[1][name].get("error")
        assert ranks[0][name]["step"] == 2
        # averaged gradients keep the replicas identical
        assert ranks[0][name]["checksum"] == pytest.approx(ranks[1][name]["checksum"], rel=1e-6)


@pytest.mark.slow
def test_evaluation_split_over_ranks_scores_like_one_process(tmp_path, digits_spec):
    digits_spec["train"].update(steps=2, device="cpu")
    pipe = Pipeline.from_spec(digits_spec, device="cpu")
    pipe.train(out=tmp_path / "run", progress=False)
    metrics = ["fid", "prdc", "is"]
    single = Pipeline.load(tmp_path / "run", device="cpu").evaluate(metrics, n=45, batch_size=7,
                                                                    seed=3)
    dh.spawn(dh.evaluate_split, 2, str(tmp_path / "run"), metrics, 45, str(tmp_path))
    for r in range(2):
        split = json.loads((tmp_path / f"rank{r}.json").read_text())
        for key in ("fid", "precision", "recall", "density", "coverage", "is"):
            assert split[key] == pytest.approx(single[key], rel=1e-5, abs=1e-6), key


def _torchrun(out: Path, spec_path: Path, steps: int, port: int) -> subprocess.Popen:
    gantk = shutil.which("gantk", path=str(Path(sys.executable).parent))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--max-restarts=0",
           gantk, "train", str(spec_path), "--out", str(out), "--steps", str(steps),
           "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.mark.slow
def test_killing_one_torchrun_rank_stops_the_job_and_torchrun_resumes(tmp_path):
    import tomli_w

    spec = _ring(steps=400, ckpt_every=5, log_every=5)
    spec["data"]["per_mode"] = 400
    spec_path = tmp_path / "ring.toml"
    spec_path.write_text(tomli_w.dumps(spec))
    out = tmp_path / "run"
    job = _torchrun(out, spec_path, 400, dh.free_port())
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / "checkpoints").glob("step_*"))
                                         if (out / "checkpoints").exists() else []) < 2:
        time.sleep(0.5)
    workers = subprocess.run(["pgrep", "-P", str(job.pid)], capture_output=True, text=True)
    pids = [int(p) for p in workers.stdout.split()]
    assert len(pids) == 2, workers.stdout
    os.kill(pids[1], signal.SIGKILL)  # one rank dies mid-run
    job.communicate(timeout=120)
    assert job.returncode != 0  # the whole job stopped
    stopped_at = Pipeline.load(out, device="cpu").step  # the newest checkpoint loads: intact
    assert 0 < stopped_at < 400
    job = _torchrun(out, spec_path, stopped_at + 10, dh.free_port())
    log, _ = job.communicate(timeout=300)
    assert job.returncode == 0, log.decode()[-3000:]
    text = log.decode()
    assert "resuming" in text and text.count("training backbone=mlp") == 1, text  # rank 0 speaks
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == stopped_at + 10  # one row per logged step
    assert Pipeline.load(out, device="cpu").step == stopped_at + 10


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_rank_at_one_step_with_a_checkpoint(tmp_path):
    import tomli_w

    spec = _ring(steps=100_000, ckpt_every=0, log_every=5)
    spec_path = tmp_path / "ring.toml"
    spec_path.write_text(tomli_w.dumps(spec))
    out = tmp_path / "run"
    job = _torchrun(out, spec_path, 100_000, dh.free_port())
    deadline = time.time() + 300
    while time.time() < deadline and not ((out / "metrics.jsonl").exists()
                                          and len((out / "metrics.jsonl").read_text()) > 200):
        time.sleep(0.5)
    job.send_signal(signal.SIGTERM)  # torchrun passes it on to every worker
    log, _ = job.communicate(timeout=180)
    assert job.returncode != 0
    ckpts = list((out / "checkpoints").glob("step_*.safetensors"))
    assert len(ckpts) == 1, log.decode()[-3000:]  # ckpt_every=0: written by the stop alone
    stopped = Pipeline.load(out, device="cpu").step
    assert 0 < stopped < 100_000 and "stopped by SIGTERM" in " ".join(log.decode().split())
