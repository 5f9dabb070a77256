"""The reproduction sweeps (examples/sweeps/) and `make demo`: every shipped sweep file validates,
the demo compares the same stack with and without the method, and the Ring comparison isolates the
post-training search (both cells train the identical generator)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gantk import Pipeline
from gantk.sweeping.sweeps import Sweep

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = sorted((ROOT / "examples" / "sweeps").glob("*.toml"))


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_shipped_sweep_files_validate(path):
    sw = Sweep.from_file(path)
    sw.validate()
    assert len(sw.spec.seeds) >= 3, "a reproduction claim needs at least 3 seeds"
    assert sw.baseline in [name for name, _ in sw.cells()]


PILOTS = sorted((ROOT / "examples" / "sweeps" / "pilots").glob("*.toml"))


@pytest.mark.parametrize("path", PILOTS, ids=[p.stem for p in PILOTS])
def test_shipped_pilot_sweeps_validate(path):
    """Pilots pick a setting on one seed (they make no claim, so the 3-seed rule is not theirs)."""
    Sweep.from_file(path).validate()


def test_demo_is_plain_against_the_same_stack_plus_advlat_z():
    sw = Sweep.from_file(ROOT / "examples" / "sweeps" / "demo.toml")
    plan = {c.name: c for c in sw.plan()}
    assert sw.baseline == "sampling=plain" and plan["sampling=plain"].overrides == []
    searched = plan["sampling=advlat_z"]  # plain's generator, sampled with the search
    assert searched.trained_in == "sampling=plain" and searched.overrides == []
    assert searched.with_ == [{"name": "advlat_z", "steps": 300, "step_size": 0.003}]
    assert "data=ring" in sw.spec.stack["stack"]  # embedded data: nothing to download
    # the demo is the Ring reproduction's stack and search trained 5x longer (docs/reproduction.md,
    # "The demo"), its claim declared: the search raises the high-quality share, on >= 5 seeds
    repro = Sweep.from_file(ROOT / "examples" / "sweeps" / "repro_advlat_ring.toml")
    assert repro.plan() == sw.plan() and repro.spec.stack["backbone"] == sw.spec.stack["backbone"]
    assert sw.spec.stack["train"]["steps"] == 5 * repro.spec.stack["train"]["steps"]
    assert sw.spec.stats.primary == ["high_quality"] and len(sw.spec.seeds) >= 5


def test_advlat_z_in_the_stack_leaves_training_unchanged(ring_spec):
    """The Ring/Grid sweeps compare cells that differ only by advlat_z (phase sample): with one
    seed they must train bit-identical nets, so the measured gap is the search's alone."""

    plain = Pipeline.from_spec(ring_spec)
    plain.train(progress=False)
    searched = Pipeline.from_spec({**ring_spec, "stack": ring_spec["stack"] + " + advlat_z"})
    searched.train(progress=False)
    a, b = plain.backbone.state_dict(), searched.backbone.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    torch.manual_seed(1)
    x0 = plain.sample(256)
    torch.manual_seed(1)
    x1 = searched.sample(256)
    assert not torch.allclose(x0, x1)  # the search did move the samples
    # a train_as cell samples the plain run's nets `with` the search: the very same draws, so
    # the Ring/Grid numbers measured with advlat_z in the stack hold for the train_as cells
    torch.manual_seed(1)
    torch.testing.assert_close(plain.sample(256, with_=["advlat_z"]), x1, rtol=0, atol=0)


def _cell_pipeline(sw, cell):
    from gantk.stack.spec import parse_spec

    return Pipeline(parse_spec(sw.base, dict(sw.cells())[cell] + ["seed=0"]), device="cpu")


def test_acl_toy_four_mode_prior_is_the_data_distribution():
    """ACL Sec. 5.6: the 4-mode prior 'shares a same distribution to the target statistic' (its
    centres and std are the data's modes), the 1-mode prior is N(0, I); nothing else differs."""
    from gantk_plugins.acl import CodeGenerator

    sw = Sweep.from_file(ROOT / "examples" / "sweeps" / "repro_acl_toy.toml")
    assert sw.baseline == "prior=1-mode" and dict(sw.cells())["prior=1-mode"] == []
    gens = {}
    for cell in ("prior=1-mode", "prior=4-mode"):
        pipe = _cell_pipeline(sw, cell)
        gens[cell] = next(c for c in pipe.components if isinstance(c, CodeGenerator))
    assert gens["prior=1-mode"].params.prior_modes == 1
    four, info = gens["prior=4-mode"], pipe.data_info
    assert len(info.modes) == 4 and four.params.prior_mode_std == info.mode_std
    dist = torch.cdist(four.centres.float(), info.modes.float())
    assert dist.min(1).values.max() < 1e-5 and dist.min(0).values.max() < 1e-5  # same set


def test_acl_ae_sweep_cells_share_the_autoencoder_and_differ_in_sampling_only():
    sw = Sweep.from_file(ROOT / "examples" / "sweeps" / "repro_acl_ae_mnist5k.toml")
    cells = dict(sw.cells())
    assert sw.baseline == "sampling=plain-ae"
    assert cells == {"sampling=plain-ae": ["methods.acl.sample_codes=prior"], "sampling=acl-ae": [],
                     "sampling=vae": ["backbone.kl_weight=3.0", "methods.acl.sample_codes=prior"],
                     "sampling=aae": ['stack="backbone=autoencoder + data=mnist5k + aae"',
                                      "methods.aae.code_hidden=256"]}
    assert "backbone=autoencoder" in sw.spec.stack["stack"] and "acl" in sw.spec.stack["stack"]
    # the AAE cell is the same autoencoder, optimiser and steps with aae instead of acl (no acl
    # options carried over), its code discriminator as wide as ACL's
    from gantk.stack.spec import parse_spec

    aae, acl = (parse_spec(sw.base, cells[c]) for c in ("sampling=aae", "sampling=acl-ae"))
    assert [m.name for m in aae.methods] == ["aae"] and aae.methods[0].options["code_hidden"] == \
        acl.methods[0].options["code_hidden"]
    assert aae.backbone == acl.backbone and aae.train == acl.train and aae.data == acl.data
    assert {"fid", "prdc", "confidence"} <= set(sw.spec.eval.metrics)


def test_sweep_scatter_refuses_a_directory_without_summary(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "sweep_scatter.py"),
                          str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "no summary here" in out.stderr and "Traceback" not in out.stderr


def test_sweep_scatter_draws_one_panel_per_cell(tmp_path, ring_spec):
    """Three panels: a trained run, one with advlat_z in its stack, and a train_as run (no nets
    of its own: the plain run's, sampled with its job's transforms)."""
    from gantk.sweeping.sweeps import JOB_FILE, RESULT_FILE

    cells = ["sampling=plain", "sampling=stack_z", "sampling=advlat_z"]
    for cell, stack in zip(cells[:2], [ring_spec["stack"], ring_spec["stack"] + " + advlat_z"]):
        pipe = Pipeline.from_spec({**ring_spec, "stack": stack,
                                   "train": {**ring_spec["train"], "steps": 4}})
        pipe.train(out=tmp_path / cell / "seed_0", progress=False)
    (tmp_path / cells[0] / "seed_0" / RESULT_FILE).write_text("{}")
    shared = tmp_path / cells[2] / "seed_0"
    shared.mkdir(parents=True)
    (shared / JOB_FILE).write_text(json.dumps({"train_run": "sampling=plain/seed_0",
                                               "eval": {"with": ["advlat_z"]}}))
    (tmp_path / "summary.json").write_text(json.dumps({"cells": [{"cell": c} for c in cells]}))
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "sweep_scatter.py"),
                          str(tmp_path), "--n", "200"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    png = tmp_path / "side_by_side.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    from PIL import Image

    w, h = Image.open(png).size
    assert w > 1.5 * h  # three columns side by side (points above, distances below)


def test_make_demo_runs_the_demo_sweep_and_readme_starts_with_it():
    make = (ROOT / "Makefile").read_text()
    recipe = make[make.index("\ndemo:"):make.index("\ntest:")]
    assert "gantk sweep examples/sweeps/demo.toml" in recipe
    assert "examples/sweep_scatter.py" in recipe
    readme = (ROOT / "README.md").read_text()
    first = readme[readme.index("```bash"):].splitlines()[1:3]
    assert [line.split("#")[0].strip() for line in first] == ["make demo", "make test"]
    assert "docs/reproduction.md" in readme
