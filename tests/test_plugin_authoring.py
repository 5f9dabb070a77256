"""A third-party plugin author's mistakes, as they surface: registration keywords checked with a
close-match suggestion, a broken plugin named when a stack uses a name it would have provided."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from gantk import PluginError
from gantk.stack.plugins import PluginManager

PLUGIN = '''
from pydantic import BaseModel, ConfigDict
from gantk import hookimpl


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight: float = 1.0


@hookimpl
def gantk_register(register):
    register.regularizer("consistency", lambda params, ctx: None, params=Params, {keywords})
'''


@pytest.fixture
def third_party(tmp_path, monkeypatch, add_entry_point):
    """Install a one-module plugin ``zz_consistency`` registering with the given keywords."""

    def install(keywords: str) -> None:
        (tmp_path / "zz_consistency.py").write_text(textwrap.dedent(PLUGIN).format(keywords=keywords))
        monkeypatch.syspath_prepend(str(tmp_path))
        add_entry_point("zz-consistency", "zz_consistency")

    sys.modules.pop("zz_consistency", None)
    yield install
    sys.modules.pop("zz_consistency", None)


def test_a_wrong_registration_keyword_is_named_with_a_suggestion(third_party, cli):
    third_party('need=["discriminator"]')
    pm = PluginManager(strict=False)
    assert "consistency" not in pm.registry.entries and "mlp" in pm.registry.entries
    broken = {b.name: b.error for b in pm.broken}
    error = broken["zz-consistency"]
    assert error.startswith("RegistrationError") and "register.regularizer('consistency'" in error
    assert "unknown keyword 'need'" in error and "did you mean 'needs'?" in error
    assert "Entry.__init__" not in error  # no internal class in the message

    code, out, _ = cli("list-plugins", "--json")
    row = next(r for r in json.loads(out) if r["name"] == "zz-consistency")
    assert code == 0 and row["status"] == "broken" and "did you mean 'needs'" in row["error"]
    others = [b for b in broken if b != "zz-consistency"]
    with pytest.raises(PluginError, match="did you mean 'needs'"):
        PluginManager(strict=True, disabled=others).registry


@pytest.mark.parametrize("keywords, message", [
    ('needs="discriminator"', "needs must be a list of names"),
    ('cost=3', "cost must be a dict"),
    ('check="yes"', "check must be callable"),
])
def test_registration_values_of_the_wrong_type_are_refused(third_party, keywords, message):
    third_party(keywords)
    pm = PluginManager(strict=False)
    assert pm.registry.entries
    error = {b.name: b.error for b in pm.broken}["zz-consistency"]
    assert message in error


def test_check_and_train_mention_a_broken_plugin_for_an_unknown_name(third_party, cli, tmp_path):
    third_party("nedds=[]")
    stack = tmp_path / "s.toml"
    stack.write_text('stack = "backbone=mlp + data=ring + consistency"\n')
    for argv in (["check", stack], ["train", stack, "--out", tmp_path / "run"]):
        code, _, err = cli(*argv)
        err = " ".join(err.split())
        assert code == 2 and "unknown method 'consistency'" in err
        assert "failed to load" in err and "zz-consistency" in err and "'needs'" in err
        assert "gantk list-plugins" in err
    assert not (tmp_path / "run").exists()


def test_checkpoint_records_provenance_and_a_missing_plugin_names_its_package(cli, tmp_path):
    """Trained with the third-party example plugin, loaded without it: say what to install."""
    import importlib.metadata as md

    import torch

    from gantk.store.checkpoint import Checkpoint
    from gantk.store.rundirs import open_checkpoint

    stack = tmp_path / "s.toml"
    stack.write_text('stack = "backbone=mlp + data=ring + feature_matching"\n[backbone]\n'
                     'hidden = [16]\n[data]\nper_mode = 50\n[train]\nsteps = 2\nbatch_size = 32\n')
    run = tmp_path / "run"
    assert cli("train", stack, "--out", run, "--no-progress")[0] == 0
    ckpt = open_checkpoint(run)
    assert isinstance(ckpt, Checkpoint)
    prov = ckpt.provenance
    assert prov["torch"] == torch.__version__ and prov["torchvision"] == md.version("torchvision")
    assert prov["components"]["feature_matching"] == {
        "kind": "regularizer", "distribution": "gantk-plugin-example",
        "version": md.version("gantk-plugin-example"), "entry_point": "feature-matching"}
    assert prov["components"]["mlp"]["distribution"] == "gantk"

    code, _, err = cli("sample", run, "--out", tmp_path / "x.png", "-p", "no:feature-matching")
    err = " ".join(err.split())
    version = md.version("gantk-plugin-example")
    assert code == 2 and "'feature_matching' came from the package gantk-plugin-example" in err
    assert f"pip install 'gantk-plugin-example=={version}'" in err and "Traceback" not in err


def test_install_hint_for_checkpoints_with_and_without_provenance():
    from gantk.store.provenance import install_hint

    spec = {"backbone": {"name": "mlp"}, "loss": {"name": "ns"}, "data": {"name": "ring"},
            "methods": [{"name": "consistency", "weight": 1.0}]}
    known = {"mlp", "ns", "ring"}
    prov = {"components": {"consistency": {"distribution": "gantk-consistency", "version": "0.3.0",
                                           "entry_point": "consistency", "kind": "regularizer"}}}
    assert install_hint(spec, prov, {}, known | {"consistency"}) is None
    hint = install_hint(spec, prov, {}, known)
    assert hint.startswith("no installed plugin provides 'consistency'")
    assert "pip install 'gantk-consistency==0.3.0'" in hint
    old = install_hint(spec, {}, {"gantk": "0.1.0", "gantk-consistency": "0.2.0"}, known)
    assert "one of the plugins the run recorded: gantk 0.1.0, gantk-consistency 0.2.0" in old
