"""Plugins cannot take gantk down (issue 30): a plugin that exits or raises anything at import,
implements a misspelt hook, reuses a name, ships a broken registry.toml or crashes in a hook is
one reported broken plugin (or one paragraph naming it), and every other command still works.
GANTK_STRICT still fails with the paragraph."""

from __future__ import annotations

import importlib.metadata as md
import json
import textwrap

import pytest

import gantk.stack.plugins
from gantk import Pipeline, PluginError, temporary_plugin
from gantk.stack.hookspecs import hookimpl
from gantk.stack.plugins import PluginManager

RING = {"stack": "backbone=mlp + loss=ns + data=ring", "backbone": {"hidden": [8]},
        "data": {"per_mode": 20}, "train": {"steps": 1, "batch_size": 16, "sample_every": 0}}


@pytest.fixture
def plugins(monkeypatch, tmp_path):
    """``plugins(name=source, ...)``: modules installed as ``gantk`` entry points for this test
    (several at once, duplicate names allowed as ``(name, module)`` pairs)."""
    real = md.entry_points
    added: list[md.EntryPoint] = []
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("GANTK_STRICT", raising=False)

    def fake(**kwargs):
        found = real(**kwargs)
        return [*found, *added] if kwargs.get("group") == "gantk" else found

    monkeypatch.setattr(gantk.stack.plugins.md, "entry_points", fake)

    def add(entry: str, module: str, source: str | None = None, files: dict | None = None):
        if source is not None:
            (folder / f"{module}.py").write_text(textwrap.dedent(source))
        for name, text in (files or {}).items():
            (folder / name).write_text(textwrap.dedent(text))
        added.append(md.EntryPoint(name=entry, value=module, group="gantk"))

    yield add
    gantk.stack.plugins._default = None


def _broken(pm: PluginManager) -> dict[str, str]:
    return {b.name: b.error for b in pm.broken}


REGISTERS_FM = """
    from gantk import hookimpl
    @hookimpl
    def gantk_register(register):
        register.regularizer("zz_reg", lambda p, ctx: None, summary={summary!r})
"""


@pytest.mark.parametrize("body, shows", [
    ("import sys\nsys.exit(0)\n", "SystemExit"),
    ("raise SystemExit('bye')\n", "SystemExit"),
    ("class Odd(BaseException): pass\nraise Odd('odd')\n", "Odd"),
    ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
])
def test_anything_raised_at_import_is_a_broken_plugin_and_gantk_goes_on(plugins, cli, body,
                                                                        shows):
    plugins("zz-exits", "zz_exits_mod", body)
    code, out, err = cli("list-plugins", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["zz-exits"]["status"] == "broken" and shows in rows["zz-exits"]["error"]
    assert rows["mlp"]["status"] == "ok"
    assert "zz-exits" in err and "skipped" in err  # the warning
    assert cli("check", "--set", "train.steps=1", _stack(plugins))[0] == 0
    code, _, err = cli("--strict", *_others_off(), "list-plugins")
    assert code == 2 and "zz-exits" in err and shows.split(":")[0] in err


def _stack(plugins) -> str:
    import tempfile

    import tomli_w

    f = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    f.write(tomli_w.dumps(RING))
    f.close()
    return f.name


def _others_off() -> list[str]:
    """-p no:X for every first-party plugin that is broken here anyway (strict tests)."""
    real = [b.name for b in PluginManager(strict=False).broken if not b.name.startswith("zz")]
    return [f for n in real for f in ("-p", f"no:{n}")]


def test_a_misspelt_hook_makes_only_that_plugin_broken(plugins, cli):
    plugins("zz-typo", "zz_typo_mod", """
        from gantk import hookimpl
        @hookimpl
        def gantk_registr(register):
            register.regularizer("zz_never", lambda p, ctx: None)
    """)
    pm = PluginManager()
    pm.registry  # noqa: B018
    assert "gantk_registr" in _broken(pm)["zz-typo"] and "gantk_register" in _broken(pm)["zz-typo"]
    assert "mlp" in pm.registry.entries and "zz_never" not in pm.registry.entries
    assert cli("list-plugins")[0] == 0
    with pytest.raises(PluginError, match="zz-typo"):
        PluginManager(strict=True, disabled=[b for b in _others_off() if b != "-p"])


def test_a_duplicate_entry_point_name_and_a_taken_component_name_are_skipped(plugins, cli):
    plugins("zz-dup", "zz_dup_a", REGISTERS_FM.format(summary="first"))
    plugins("zz-dup", "zz_dup_b", REGISTERS_FM.format(summary="second").replace("zz_reg", "zz_b"))
    plugins("zz-clash", "zz_clash_mod", """
        from gantk import hookimpl
        @hookimpl
        def gantk_register(register):
            register.regularizer("zz_clash_ok", lambda p, ctx: None)
            register.loss("ns", lambda p: None)  # gantk's own loss
    """)
    pm = PluginManager()
    entries = pm.registry.entries
    broken = _broken(pm)
    assert "second plugin with the entry-point name 'zz-dup'" in broken["zz-dup"]
    assert "registered twice" in broken["zz-clash"]
    assert entries["zz_reg"].summary == "first" and "zz_b" not in entries
    assert "zz_clash_ok" not in entries and entries["ns"].plugin != "zz-clash"  # rolled back
    code, out, _ = cli("list-plugins", "--json")
    assert code == 0 and "zz_reg" in out


def test_a_plugin_registering_a_taken_name_is_broken_or_strict_error():
    class Clash:
        @hookimpl
        def gantk_register(self, register):
            register.loss("ns", lambda p: None)

    pm = PluginManager()
    pm.register(Clash(), name="clash")
    assert pm.registry.entries["ns"].plugin != "clash"
    assert "registered twice" in _broken(pm)["clash"]
    pm = PluginManager(strict=True)
    pm.register(Clash(), name="clash")
    with pytest.raises(PluginError, match="registered twice"):
        pm.registry  # noqa: B018 - building the registry raises


@pytest.mark.parametrize("toml, says", [
    ("[components.zz_meta\n", "cannot read registry metadata"),
    ('[components.zz_meta]\nneeds = "labels"\n', "needs must be a list"),
    ("[components.zz_meta]\ncost = 5\n", "cost must be a table"),
    ("components = 3\n", "is not a table"),
    ("[components.zz_meta.defaults]\nno_such_option = 1\n", "unknown option"),
])
def test_a_broken_registry_toml_skips_its_plugin(plugins, cli, toml, says):
    module = f"zz_meta_mod_{len(toml)}_{toml.count('=')}"  # one module per case (sys.modules)
    plugins("zz-meta", module, """
        from pathlib import Path
        from gantk import hookimpl
        @hookimpl
        def gantk_registry_files():
            return [str(Path(__file__).with_suffix(".toml"))]
        @hookimpl
        def gantk_register(register):
            register.regularizer("zz_meta", lambda p, ctx: None)
    """, files={f"{module}.toml": toml})
    pm = PluginManager()
    pm.registry  # noqa: B018
    assert says in _broken(pm)["zz-meta"]
    assert "zz_meta" not in pm.registry.entries and "gp" in pm.registry.entries
    assert pm.registry.entries["gp"].title  # the first-party metadata still merged
    code, out, _ = cli("list-plugins", "--json")
    assert code == 0 and "mlp" in out


def test_a_hook_raising_in_gantk_on_build_is_a_paragraph_naming_the_plugin(plugins, cli,
                                                                           tmp_path):
    plugins("zz-build", "zz_build_mod", """
        from gantk import hookimpl
        @hookimpl
        def gantk_on_build(pipeline):
            raise ZeroDivisionError("plugin bug")
    """)
    code, _, err = cli("train", _stack(plugins), "--out", tmp_path / "run", "--no-progress")
    err = " ".join(err.split())
    assert code == 2, err
    assert "'zz-build'" in err and "gantk_on_build" in err and "ZeroDivisionError" in err
    assert "unexpected" not in err and "-p no:zz-build" in err


def test_a_hook_error_in_python_names_the_plugin_and_keeps_the_chain():
    class Bad:
        @hookimpl
        def gantk_on_build(self, pipeline):
            {}["missing"]

    with temporary_plugin(Bad(), name="bad-hook"):
        with pytest.raises(PluginError, match="'bad-hook'.*gantk_on_build.*KeyError") as err:
            Pipeline.from_spec(RING)
    assert isinstance(err.value.__cause__, KeyError)


def test_a_huge_summary_is_trimmed_in_list_plugins(plugins, cli):
    plugins("zz-huge", "zz_huge_mod", REGISTERS_FM.format(summary="x" * 5_000_000))
    code, out, _ = cli("list-plugins")
    assert code == 0 and len(out) < 200_000
    line = next(x for x in out.splitlines() if x.startswith("zz_reg"))
    assert len(line) < 1000 and "more characters" in line
    code, out, _ = cli("list-plugins", "--json")
    assert code == 0 and len(out) < 200_000
