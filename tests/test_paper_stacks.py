"""The paper configurations under examples/stacks/paper/ (GPU-sized runs on CIFAR-10, STL-10, CelebA,
FFHQ, ...) stay valid without their data sets or a GPU: every name and option resolves against the
registry (a misspelled option fails here, not after hours on a rented machine), and the README's
table lists every file with its command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from gantk.stack import build
from gantk.base.errors import SpecError
from gantk.facade.pipeline import Pipeline
from gantk.stack.plugins import get_plugin_manager
from gantk.stack.spec import parse_spec

PAPER = Path(__file__).resolve().parents[1] / "examples" / "stacks" / "paper"
STACKS = sorted(PAPER.glob("*.toml"))
EMBEDDED = {"digits", "ring", "grid"}  # CPU-sized data sets belong in examples/stacks/, not here


def _resolve(source):
    res = build.resolve(parse_spec(source), get_plugin_manager().registry)
    build.check_static(res)
    return res


def test_every_paper_has_configurations():
    prefixes = {p.stem.split("_")[0] for p in STACKS}
    assert {"advlat", "lis", "acl", "clr"} <= prefixes


@pytest.mark.parametrize("path", STACKS, ids=[p.stem for p in STACKS])
def test_paper_stack_resolves_without_its_data(path):
    res = _resolve(path)
    assert res.data.entry.name not in EMBEDDED
    assert res.spec.train.steps >= 10_000  # paper-length runs, not CPU demos
    # the file's own header tells the user how to run it
    assert f"gantk train examples/stacks/paper/{path.name} --out runs/{path.stem}" in path.read_text()


@pytest.mark.parametrize("where", ["backbone", "data", "train", "methods"])
def test_a_misspelled_option_is_refused(where):
    raw = tomllib.loads((PAPER / "advlat_cifar10_dcgan_qua.toml").read_text())
    if where == "methods":
        raw["methods"][0]["step_sise"] = 0.01
    else:
        raw[where]["step_sise"] = 0.01
    with pytest.raises(SpecError, match="step_sise"):
        _resolve(raw)


def test_readme_lists_every_file_with_its_command():
    readme = (PAPER / "README.md").read_text()
    listed = set(re.findall(r"`([a-z0-9_]+\.toml)`", readme))
    assert listed == {p.name for p in STACKS}
    for p in STACKS:
        assert f"gantk train examples/stacks/paper/{p.name} --out runs/{p.stem}" in readme


@pytest.mark.slow
@pytest.mark.parametrize("path", STACKS, ids=[p.stem for p in STACKS])
def test_paper_stack_builds_its_networks(path):
    """What `gantk check` does: build G, D and every component at the paper's size (no data read)."""
    pipe = Pipeline.from_spec(path, device="cpu")
    assert sum(p.numel() for p in pipe.backbone.generator.parameters()) > 0
