"""Stack specs: both forms, overrides, and every class of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantk import IncompatibleStackError, Pipeline, SpecError, parse_spec, temporary_plugin
from gantk.stack.build import resolve
from gantk.stack.hookspecs import hookimpl
from gantk.base.interfaces import Regularizer
from gantk.stack.plugins import get_registry
from gantk.stack.spec import parse_shorthand


def test_shorthand_tokens_keep_trailing_plus_of_aliases():
    assert parse_shorthand("backbone=dcgan + qua+") == {
        "backbone": {"name": "dcgan"}, "methods": [{"name": "qua+"}]}
    parsed = parse_shorthand("backbone=dcgan+clr + div+ + lis")
    assert [m["name"] for m in parsed["methods"]] == ["clr", "div+", "lis"]
    assert parse_shorthand("data=ring + backbone=mlp + loss=hinge")["loss"] == {"name": "hinge"}


def test_shorthand_and_tables_load_to_the_same_resolved_spec(tmp_path: Path):
    short = tmp_path / "short.toml"
    short.write_text('stack = "backbone=mlp + loss=hinge + data=grid + gp"\n'
                     "[backbone]\nlatent_dim = 4\n[[methods]]\nname = \"gp\"\nweight = 1.0\n"
                     "[train]\nsteps = 7\n")
    tables = tmp_path / "tables.toml"
    tables.write_text('[backbone]\nname = "mlp"\nlatent_dim = 4\n[loss]\nname = "hinge"\n'
                      '[data]\nname = "grid"\n[[methods]]\nname = "gp"\nweight = 1.0\n'
                      "[train]\nsteps = 7\n")
    reg = get_registry()
    a = resolve(parse_spec(short), reg).spec
    b = resolve(parse_spec(tables), reg).spec
    assert a == b
    assert a.backbone.options["hidden"] == [100, 200, 100]  # defaults filled in
    assert a.methods[0].options == {"weight": 1.0, "center": 1.0}


def test_overrides_reach_every_section(ring_spec):
    spec = parse_spec(ring_spec, ["train.steps=500", "backbone.latent_dim=3", "seed=7",
                                  'loss.name="hinge"', "data.std=0.01"])
    assert spec.train.steps == 500 and spec.seed == 7 and spec.loss.name == "hinge"
    assert spec.backbone.options["latent_dim"] == 3 and spec.data.options["std"] == 0.01
    spec = parse_spec({"stack": "backbone=mlp + gp"}, ["methods.gp.weight=2.5"])
    assert spec.methods[0].options == {"weight": 2.5}
    spec = parse_spec({"backbone": "mlp", "methods": [{"name": "gp"}]}, ["methods[0].weight=3"])
    assert spec.methods[0].options == {"weight": 3}


def test_a_stack_override_replaces_the_methods_and_drops_their_stale_tables():
    """A sweep cell that swaps one method for another (acl -> aae) must not carry the old
    method's option table; a table of a method the new shorthand still names is kept, and a file
    whose own shorthand and tables disagree is still refused."""
    base = {"stack": "backbone=autoencoder + acl", "methods": [{"name": "acl", "code_hidden": 64}]}
    swapped = parse_spec(base, ['stack="backbone=autoencoder + aae"', "methods.aae.code_hidden=8"])
    assert [(m.name, m.options) for m in swapped.methods] == [("aae", {"code_hidden": 8})]
    added = parse_spec(base, ['stack="backbone=autoencoder + acl + gp"'])
    assert [(m.name, m.options) for m in added.methods] == [("acl", {"code_hidden": 64}),
                                                            ("gp", {})]
    with pytest.raises(SpecError, match="which the shorthand does not name"):
        parse_spec({**base, "stack": "backbone=autoencoder + aae"})


def test_malformed_toml_names_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('stack = "backbone=mlp"\n[train\nsteps = 3\n')
    with pytest.raises(SpecError) as err:
        parse_spec(bad)
    text = err.value.paragraph()
    assert str(bad) in text and "line 2" in text and "Fix:" in text


def test_unknown_backbone_suggests_close_match():
    with pytest.raises(SpecError) as err:
        Pipeline.from_spec({"stack": "backbone=dcgn + data=digits"})
    text = err.value.paragraph()
    assert "backbone.name" in text and "'dcgan'" in text and "did you mean" in text


def test_unknown_method_option_names_toml_path_and_suggests():
    with pytest.raises(SpecError) as err:
        Pipeline.from_spec({"backbone": "mlp", "methods": [{"name": "gp"}, {"name": "r1", "gama": 1}]})
    text = err.value.paragraph()
    assert "methods[1].gama" in text and "'gamma'" in text


def test_wrong_type_and_unknown_train_key():
    with pytest.raises(SpecError) as err:
        Pipeline.from_spec({"backbone": {"name": "mlp", "latent_dim": "two"}})
    assert "backbone.latent_dim" in err.value.paragraph()
    with pytest.raises(SpecError) as err:
        parse_spec({"backbone": "mlp", "train": {"step": 5}})
    assert "train.step" in err.value.paragraph() and "'steps'" in err.value.paragraph()


def test_bad_shorthand_key_and_missing_backbone():
    with pytest.raises(SpecError, match="unknown shorthand key 'bakbone'"):
        parse_spec({"stack": "bakbone=mlp"})
    with pytest.raises(SpecError, match="names no backbone"):
        parse_spec({"stack": "gp"})


class _NeedsLabels(Regularizer):
    pass


class _Plugin:
    @hookimpl
    def gantk_register(self, register):
        register.regularizer("needs_labels", lambda p, c: _NeedsLabels(), needs=["labels"],
                             summary="test")
        register.regularizer("needs_encoder_x", lambda p, c: _NeedsLabels(), needs=["d_features"],
                             conflicts=["gp"], summary="test")


def test_incompatible_stacks_are_refused_with_reason():
    with temporary_plugin(_Plugin(), name="test-needs"):
        with pytest.raises(IncompatibleStackError) as err:
            Pipeline.from_spec({"stack": "backbone=mlp + data=ring + needs_labels"})
        text = err.value.paragraph()
        assert "methods[0]" in text and "labels" in text and "'ring' is unlabelled" in text
        with pytest.raises(IncompatibleStackError, match="conflicts with 'gp'"):
            Pipeline.from_spec({"stack": "backbone=mlp + gp + needs_encoder_x"})
        # labelled digits satisfy the need
        Pipeline.from_spec({"stack": "backbone=dcgan + data=digits + needs_labels",
                            "backbone": {"width": 2}})


def test_backbone_refusal_names_the_fix():
    with pytest.raises(IncompatibleStackError) as err:
        Pipeline.from_spec({"stack": "backbone=dcgan + data=digits", "data": {"resolution": 8}})
    assert "multiple of 16" in err.value.paragraph()


def test_duplicate_methods_are_refused():
    with pytest.raises(SpecError, match="appear more than once|appears twice"):
        parse_spec({"stack": "backbone=mlp + gp + gp"})


def _error(spec: dict, overrides: list[str] | None = None) -> str:
    with pytest.raises(SpecError) as info:
        resolve(parse_spec(spec, overrides), get_registry())
    return info.value.paragraph()


def test_methods_index_counts_stack_positions_in_both_forms():
    """methods[i] is the i-th method of the stack, whether its options sit in a [[methods]] table
    placed elsewhere, in tables only, or come from --set."""
    base = {"backbone": {"name": "mlp"}, "data": {"name": "ring"}}
    short = {**base, "stack": "backbone=mlp + data=ring + advlat_qua + gp",
             "methods": [{"name": "gp", "wieght": 1.0}, {"name": "advlat_qua"}]}
    tables = {**base, "methods": [{"name": "advlat_qua"}, {"name": "gp", "wieght": 1.0}]}
    for spec in (short, tables):
        assert _error(spec).startswith("methods[1].wieght: unknown option (did you mean 'weight'?)")
    plain = {**base, "stack": "backbone=mlp + data=ring + advlat_qua + gp"}
    for spec in (plain, {**base, "methods": [{"name": "advlat_qua"}, {"name": "gp"}]}):
        assert _error(spec, ["methods[1].weight=-1"]).startswith("methods[1].weight: Input should")
    # a table that matches no method of the shorthand is named by its own position
    odd = {**plain, "methods": [{"name": "gp"}, {"name": "r1"}]}
    assert "[[methods]] table number 2 gives options for 'r1'" in _error(odd)
    twice = {**plain, "methods": [{"name": "gp"}, {"name": "gp", "weight": 2.0}]}
    assert _error(twice).startswith("methods[1]: two [[methods]] tables give options for 'gp'")


def test_a_misspelt_method_name_gets_a_close_match_in_both_forms():
    base = {"backbone": {"name": "mlp"}, "data": {"name": "ring"}}
    short = {**base, "stack": "backbone=mlp + data=ring + gp + advlat_qau"}
    tables = {**base, "methods": [{"name": "gp"}, {"name": "advlat_qau"}]}
    for spec in (short, tables):
        assert _error(spec).startswith("methods[1].name: unknown method 'advlat_qau'; "
                                       "did you mean 'advlat_qua'")
    # shorthand and table disagree: the close pair is pointed out, whichever is misspelt
    for shorthand, table in (("advlat_qau", "advlat_qua"), ("advlat_qua", "advlat_qau")):
        spec = {**base, "stack": f"backbone=mlp + data=ring + {shorthand}",
                "methods": [{"name": table, "steps": 3}]}
        assert f"the shorthand names {shorthand!r}, which is close" in _error(spec)
