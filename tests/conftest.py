"""Shared fixtures: tiny specs that train in well under a second a step on a CPU."""

from __future__ import annotations

import copy

import pytest

RING = {
    "stack": "backbone=mlp + loss=ns + data=ring",
    "seed": 0,
    "backbone": {"hidden": [32, 32]},
    "data": {"per_mode": 200},
    "train": {"steps": 20, "batch_size": 64, "log_every": 1, "sample_every": 0, "ckpt_every": 10},
}

DIGITS = {
    "stack": "backbone=dcgan + loss=ns + data=digits",
    "seed": 0,
    "backbone": {"width": 4, "latent_dim": 16},
    "data": {"resolution": 16},
    "train": {"steps": 6, "batch_size": 16, "log_every": 1, "sample_every": 0, "ckpt_every": 3},
}


@pytest.fixture
def ring_spec() -> dict:
    return copy.deepcopy(RING)


@pytest.fixture
def digits_spec() -> dict:
    return copy.deepcopy(DIGITS)


@pytest.fixture
def cli(capsys):
    """Run the gantk CLI in-process: returns (exit code, stdout, stderr)."""
    from gantk.cli import main

    import gantk.plugins

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    yield run
    gantk.plugins._default = None  # -p/--strict replaced the process-wide manager: start afresh
