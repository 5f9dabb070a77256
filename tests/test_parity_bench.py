"""benchmarks/backbone_parity.py as a user runs a subset of it: rows, seeds, steps, JSON + table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "backbone_parity.py"


def _load():
    spec = importlib.util.spec_from_file_location("backbone_parity", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_a_subset_runs_and_writes_json_and_table(tmp_path, capsys):
    bench = _load()
    out = tmp_path / "parity.json"
    assert bench.main(["--rows", "mlp_ring", "--seeds", "0", "1", "--steps", "3", "--n-eval", "200", "--fresh",
                       "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    row = data["rows"]["mlp_ring"]
    assert data["seeds"] == [0, 1] and row["steps"] == 3 and len(row["runs"]) == 2
    for key in ("recall", "coverage", "modes_covered"):
        g_mean, _ = row["summary"][key]["gantk"]
        assert g_mean == pytest.approx(sum(r["gantk"][key] for r in row["runs"]) / 2)
    printed = capsys.readouterr().out
    assert "| mlp_ring | 3 |" in printed
    assert bench.main(["--report", str(out)]) == 0
    assert "| mlp_ring | 3 |" in capsys.readouterr().out
    assert bench.main(["--rows", "nope"]) == 2


def test_target_check_uses_one_reference_std():
    bench = _load()
    runs = [{"gantk": {"fid": f, "recall": r, "coverage": 0.5}, "reference": {"fid": rf, "recall": rr, "coverage": 0.5}}
            for f, r, rf, rr in ((5.0, 0.5, 4.0, 0.7), (5.0, 0.5, 6.0, 0.9))]
    s = bench.summarise(runs)  # reference fid 5 ± 1.41, recall 0.8 ± 0.14
    assert s["misses"] == ["recall"] and not s["meets_target"]
    assert s["fid"]["ratio"] == pytest.approx(1.0)
