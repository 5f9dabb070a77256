"""Every shipped example stack validates and builds (what `gantk check` does), so the examples a
user copies from never rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantk import Pipeline

STACKS = sorted((Path(__file__).resolve().parents[1] / "examples" / "stacks").glob("*.toml"))


def test_there_are_examples():
    assert len(STACKS) >= 10


@pytest.mark.parametrize("path", STACKS, ids=[p.stem for p in STACKS])
def test_example_stack_builds(path):
    pipe = Pipeline.from_spec(path, device="cpu")
    assert pipe.spec.train.steps > 0
    assert sum(p.numel() for p in pipe.backbone.generator.parameters()) > 0
