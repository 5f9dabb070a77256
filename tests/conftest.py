"""Shared fixtures: tiny specs that train in well under a second a step on a CPU."""

from __future__ import annotations

import copy
import os

import pytest

# One torch thread for every test and the processes it starts: gantk's default follows the load
# average (gantk.facade.threads), and runs compared bit for bit must use the same count.
os.environ.setdefault("OMP_NUM_THREADS", "1")

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
    from gantk.cli.app import main

    import gantk.stack.plugins

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    yield run
    gantk.stack.plugins._default = None  # -p/--strict replaced the process-wide manager: start afresh


@pytest.fixture
def add_entry_point(monkeypatch):
    """``add_entry_point(name, module)``: one more ``gantk`` entry point next to the installed ones,
    as if a package declaring it were installed (for this test only; not strict)."""
    import importlib.metadata as md

    import gantk.stack.plugins

    real = md.entry_points

    def add(name: str, module: str) -> None:
        def fake(**kwargs):
            if kwargs.get("group") != "gantk":
                return real(**kwargs)
            return [*real(**kwargs), md.EntryPoint(name=name, value=module, group="gantk")]

        monkeypatch.setattr(gantk.stack.plugins.md, "entry_points", fake)
        monkeypatch.delenv("GANTK_STRICT", raising=False)  # CI runs strict; these tests are not

    return add


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Cached reference statistics go to a per-session folder, never the user's ~/.cache."""
    import os

    old = os.environ.get("GANTK_CACHE_DIR")
    os.environ["GANTK_CACHE_DIR"] = str(tmp_path_factory.mktemp("gantk_cache"))
    yield
    if old is None:
        os.environ.pop("GANTK_CACHE_DIR", None)
    else:
        os.environ["GANTK_CACHE_DIR"] = old
