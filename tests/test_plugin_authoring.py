"""A third-party plugin author's mistakes, as they surface: registration keywords checked with a
close-match suggestion, a broken plugin named when a stack uses a name it would have provided."""

from __future__ import annotations

import importlib.metadata as md
import json
import sys
import textwrap

import pytest

import gantk.plugins as plugins_mod
from gantk import PluginError
from gantk.plugins import PluginManager

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
def third_party(tmp_path, monkeypatch):
    """Install a one-module plugin ``zz_consistency`` registering with the given keywords."""

    def install(keywords: str) -> None:
        (tmp_path / "zz_consistency.py").write_text(textwrap.dedent(PLUGIN).format(keywords=keywords))
        monkeypatch.syspath_prepend(str(tmp_path))
        real = md.entry_points

        def fake(**kwargs):
            if kwargs.get("group") != "gantk":
                return real(**kwargs)
            return [*real(**kwargs), md.EntryPoint(name="zz-consistency", value="zz_consistency",
                                                   group="gantk")]

        monkeypatch.setattr(plugins_mod.md, "entry_points", fake)
        monkeypatch.delenv("GANTK_STRICT", raising=False)

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
