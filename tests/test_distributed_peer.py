"""Issue 30: killing one torchrun rank makes the other say that a peer died and how to resume
(not "unexpected RuntimeError ... gloo"), and the same torchrun command then resumes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dist_helpers as dh
from gantk import Pipeline


def _torchrun(out: Path, spec_path: Path, port: int) -> subprocess.Popen:
    gantk = shutil.which("gantk", path=str(Path(sys.executable).parent))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--max-restarts=0",
           gantk, "train", str(spec_path), "--out", str(out), "--no-progress"]
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.mark.slow
def test_a_killed_rank_is_reported_as_a_dead_peer_with_how_to_resume(tmp_path):
    import tomli_w

    spec = {"stack": "backbone=mlp + loss=ns + data=ring", "seed": 0,
            "backbone": {"hidden": [32, 32]}, "data": {"per_mode": 400},
            "train": {"steps": 100_000, "batch_size": 64, "log_every": 5, "sample_every": 0,
                      "ckpt_every": 5, "device": "cpu"}}
    spec_path = tmp_path / "ring.toml"
    spec_path.write_text(tomli_w.dumps(spec))
    out = tmp_path / "run"
    job = _torchrun(out, spec_path, dh.free_port())
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("checkpoints/step_*")):
        time.sleep(0.3)
    workers = subprocess.run(["pgrep", "-P", str(job.pid)], capture_output=True, text=True)
    pids = [int(p) for p in workers.stdout.split()]
    assert len(pids) == 2, workers.stdout
    os.kill(pids[1], signal.SIGKILL)
    log, _ = job.communicate(timeout=180)
    text = " ".join(log.decode(errors="replace").split())
    assert job.returncode != 0
    assert "unexpected" not in text, text[-3000:]
    assert "another process of this torchrun job died or stopped answering" in text, text[-3000:]
    assert "resumes from the newest checkpoint" in text
    assert Pipeline.load(out, device="cpu").step > 0  # the newest checkpoint is intact
