"""Plugin discovery: entry points one by one, broken plugins reported, disabling, strict mode,
registry.toml metadata, and the third-party example package."""

from __future__ import annotations

import importlib.metadata as md
import json

import pytest

from gantk import Pipeline, PluginError, temporary_plugin
from gantk.stack.hookspecs import hookimpl
from gantk.stack.plugins import PluginManager


@pytest.fixture
def with_broken_entry_point(add_entry_point):
    """Add an entry point whose module does not import, next to the real ones."""
    add_entry_point("zz-broken", "gantk_no_such_module_xyz")


def test_broken_plugin_is_listed_and_the_rest_still_load(with_broken_entry_point):
    pm = PluginManager(strict=False)
    rows = pm.describe()
    broken = [r for r in rows if r["name"] == "zz-broken"]
    assert len(broken) == 1 and broken[0]["status"] == "broken" and broken[0]["kind"] == "plugin"
    assert "ModuleNotFoundError" in broken[0]["error"]
    names = {r["name"] for r in rows if r["status"] == "ok"}
    assert {"mlp", "dcgan", "ns", "hinge", "wgan", "lsgan", "gp", "ring", "grid", "digits"} <= names


def test_strict_mode_turns_a_broken_plugin_into_an_error(with_broken_entry_point):
    others = [b.name for b in PluginManager(strict=False).broken if b.name != "zz-broken"]
    with pytest.raises(PluginError) as err:
        PluginManager(strict=True, disabled=others)
    text = err.value.paragraph()
    assert "zz-broken" in text and "GANTK_DISABLE_PLUGINS=zz-broken" in text


def test_disabling_a_plugin_removes_its_components(with_broken_entry_point):
    first_party_broken = [b.name for b in PluginManager(strict=False).broken]
    pm = PluginManager(disabled=["zz-broken", "losses", *first_party_broken], strict=True)
    assert "hinge" not in pm.registry.entries
    assert "mlp" in pm.registry.entries


def test_first_party_plugins_all_load_in_strict_mode():
    pm = PluginManager(strict=True)
    assert not pm.broken
    kinds = {e.kind for e in pm.registry.entries.values()}
    assert {"backbone", "loss", "regularizer", "dataset"} <= kinds


def test_list_plugins_json_has_the_promised_keys(cli):
    code, out, _ = cli("list-plugins", "--json")
    assert code == 0
    rows = json.loads(out)
    for row in rows:
        assert {"name", "kind", "plugin", "version", "summary"} <= set(row)
    mlp = next(r for r in rows if r["name"] == "mlp")
    assert mlp["kind"] == "backbone" and mlp["plugin"] == "gantk" and mlp["version"]


def test_list_plugins_table_marks_broken(cli, with_broken_entry_point):
    code, out, _ = cli("list-plugins")
    assert code == 0 and "zz-broken" in out and "broken" in out and "mlp" in out


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_flags_work_before_and_after_the_subcommand(cli, with_broken_entry_point, where):
    """`gantk --strict list-plugins` (as --help shows it) and `gantk list-plugins --strict`."""
    others = [b.name for b in PluginManager(strict=False).broken if b.name != "zz-broken"]
    off = [f for name in ["losses", *others] for f in ("-p", f"no:{name}")]
    flags = ["--strict", *off]
    argv = [*flags, "list-plugins", "--json"] if where == "before" else ["list-plugins", "--json", *flags]
    code, _, err = cli(*argv)
    assert code == 2 and "zz-broken" in err  # --strict was seen
    code, out, _ = cli(*(["-p", "no:zz-broken", *off, "list-plugins", "--json", "-p", "no:advlat"]))
    names = {r["name"] for r in json.loads(out) if r.get("status", "ok") == "ok"}
    assert code == 0 and "mlp" in names and "zz-broken" not in out
    assert "hinge" not in names and "advlat_z" not in names  # -p on both sides of the subcommand
    with pytest.raises(PluginError):  # --debug re-raises instead of printing a paragraph
        cli(*(["--debug", "--strict", "list-plugins"] if where == "before"
              else ["list-plugins", "--debug", "--strict"]))


def test_list_plugins_into_a_pipe_is_one_line_per_component(cli):
    """Not a terminal (capsys, `| grep`, `> file`): tab-separated lines, never wrapped at 80."""
    _, out, _ = cli("list-plugins")
    _, js, _ = cli("list-plugins", "--json")
    lines = out.splitlines()
    assert lines[0].split("\t") == ["name", "kind", "plugin", "version", "paper", "summary"]
    assert len(lines) == 1 + len(json.loads(js))
    assert all(len(line.split("\t")) == 6 for line in lines)
    mlp = next(line.split("\t") for line in lines if line.startswith("mlp\t"))
    assert mlp[1:3] == ["backbone", "gantk"] and "2-D data" in mlp[5]


def test_registry_toml_metadata_is_merged():
    from gantk.stack.plugins import get_registry

    gp = get_registry().entries["gp"]
    assert gp.title == "WGAN-GP gradient penalty" and "Gulrajani" in gp.paper
    assert gp.cost["extra_d_forward_backward"] == 1 and gp.defaults == {"weight": 10.0}


def test_a_misspelt_hook_is_caught():
    class Typo:
        @hookimpl
        def gantk_registr(self, register):  # noqa: D401 - misspelt on purpose
            pass

    pm = PluginManager(load_entry_points=False)
    pm.register(Typo(), name="typo")
    with pytest.raises(Exception, match="unknown hook"):
        pm.pm.check_pending()


def test_third_party_example_plugin_is_installed_listed_and_trains(cli):
    """examples/gantk-plugin-example is pip-installed by the set-up (Makefile)."""
    dists = {ep.dist.name for ep in md.entry_points(group="gantk") if ep.dist}
    assert "gantk-plugin-example" in dists, "run `make setup` (pip install -e examples/gantk-plugin-example)"
    code, out, _ = cli("list-plugins", "--json")
    row = next(r for r in json.loads(out) if r["name"] == "feature_matching")
    assert row["plugin"] == "gantk-plugin-example" and row["kind"] == "regularizer"
    pipe = Pipeline.from_spec({"stack": "backbone=mlp + data=ring + feature_matching",
                               "backbone": {"hidden": [16]},
                               "data": {"per_mode": 50}, "train": {"batch_size": 32}})
    logs = pipe.train(steps=3, progress=False)
    assert "feature_matching/fm" in logs and logs["feature_matching/fm"] >= 0


def test_example_plugin_equation_on_known_tensors():
    import torch
    from gantk_example_plugin import feature_matching

    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert feature_matching(real, torch.zeros(2, 2)).item() == 2.0**2 + 3.0**2


def test_docs_name_every_hook_and_command():
    from pathlib import Path

    from gantk.stack import hookspecs
    from gantk.cli.app import build_parser

    root = Path(__file__).resolve().parents[1]
    plugins_doc = (root / "docs" / "plugins.md").read_text()
    hooks = [n for n in dir(hookspecs) if n.startswith("gantk_")]
    assert hooks and all(f"`{h}(" in plugins_doc for h in hooks), hooks
    cli_doc = (root / "docs" / "cli.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert all(f"`gantk {cmd}" in cli_doc for cmd in sub.choices), list(sub.choices)


def test_event_hooks_are_called_in_order(ring_spec, tmp_path):
    calls = []

    class Recorder:
        @hookimpl
        def gantk_on_build(self, pipeline):
            calls.append(("build", pipeline.step))

        @hookimpl
        def gantk_on_step_end(self, step, logs):
            calls.append(("step", step, bool(logs)))

        @hookimpl
        def gantk_on_train_end(self, pipeline, run_dir):
            calls.append(("train_end", pipeline.step, run_dir is not None))

        @hookimpl
        def gantk_on_sample(self, samples):
            calls.append(("sample", tuple(samples.shape)))

    with temporary_plugin(Recorder(), name="recorder"):
        pipe = Pipeline.from_spec(ring_spec, ["train.log_every=2"])
        pipe.train(steps=3, out=tmp_path / "run", progress=False)
        pipe.sample(5)
    assert calls[0] == ("build", 0)
    assert calls[1:4] == [("step", 1, False), ("step", 2, True), ("step", 3, True)]
    assert ("train_end", 3, True) in calls and calls[-1] == ("sample", (5, 2))


def test_from_spec_takes_a_path_a_dict_or_a_stackspec(tmp_path):
    from pathlib import Path

    from gantk import parse_spec

    path = Path(__file__).resolve().parents[1] / "examples" / "stacks" / "ring.toml"
    a = Pipeline.from_spec(path).spec
    b = Pipeline.from_spec(parse_spec(path)).spec
    import tomllib

    c = Pipeline.from_spec(tomllib.loads(path.read_text())).spec
    assert a == b == c


def test_loading_plugins_imports_no_heavy_optional_library():
    """Every command loads all plugins first; clean-fid (and through it torchvision, torch._dynamo
    and SciPy) cost seconds of start-up and are imported where they are used instead."""
    import subprocess
    import sys

    heavy = ("cleanfid", "torchvision", "torch._dynamo", "sklearn", "matplotlib", "scipy")
    code = ("import sys, gantk.stack.plugins as p; p.get_plugin_manager().registry; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_gantk_namespace_is_what_all_names():
    """`from gantk import *` and `dir(gantk)` show the public API, not helper imports."""
    import types

    import gantk

    public = {n for n in dir(gantk)
              if not n.startswith("_") and not isinstance(getattr(gantk, n), types.ModuleType)}
    assert public == set(gantk.__all__) - {"__version__"}
    assert {"annotations", "version", "PackageNotFoundError", "Any"}.isdisjoint(public)
    star: dict = {}
    exec("from gantk import *", star)
    assert {n for n in star if n != "__builtins__"} == set(gantk.__all__)
