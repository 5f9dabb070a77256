"""`benchmarks/gpu_throughput.py --quick` at CI size on the CPU: the script a lent GPU runs first
must not fail there for want of a smoke test (docs/performance.md, "GPU")."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_gpu_throughput_quick_runs_on_the_cpu_at_ci_size(tmp_path):
    out = tmp_path / "quick.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "gpu_throughput.py"), "--quick", "--device", "cpu",
         "--batch", "2", "--steps", "1", "--rounds", "1", "--warmup", "1",
         "--configs", "dcgan-32,stylegan2-32", "--variants", "fp32,bf16", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gantk/ref" in proc.stdout
    report = json.loads(out.read_text())
    assert report["device"] == "cpu"
    rows = {(r["config"], r["variant"]): r for r in report["results"]}
    assert set(rows) == {(c, v) for c in ("dcgan-32", "stylegan2-32") for v in ("fp32", "bf16")}
    for r in rows.values():
        assert "error" not in r and "skipped" not in r, r
        assert r["gantk_img_per_s"] > 0 and r["reference_img_per_s"] > 0
        assert math.isfinite(r["ratio"])


def test_quick_knows_where_compile_applies():
    sys.path.insert(0, str(BENCH))
    try:
        import throughput_quick as tq
    finally:
        sys.path.remove(str(BENCH))
    assert set(tq.CONFIGS) == {"dcgan-32", "resnet-32", "stylegan2-32", "stylegan2-64"}
    assert set(tq.VARIANTS) == {"fp32", "bf16", "channels_last", "compile"}
    assert tq.applies("dcgan-32", "compile") and tq.applies("resnet-32", "compile")
    assert not tq.applies("stylegan2-32", "compile")  # R1: D differentiated twice
