"""Hardening, round two (issue 30): stored files. An edited spec.json does not make every
checkpoint unusable (each checkpoint holds its own stack); a bookkeeping key never makes another
stack; suggested commands quote what they echo, so a path or package name cannot inject a
command into a copied suggestion."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from gantk import CheckpointError, Pipeline
from gantk.store.provenance import install_hint
from gantk.store.rundirs import list_checkpoints, open_checkpoint
from gantk.store.stackkeys import BOOKKEEPING, same_stack, set_flags, shell

EVIL = "'; touch PWNED; echo '"


from test_damaged import cli  # noqa: E402,F401 - the CLI with rich's line wrapping undone


@pytest.fixture
def stack(ring_spec, tmp_path) -> Path:
    import tomli_w

    ring_spec["train"].update(steps=4, log_every=2, ckpt_every=2)
    path = tmp_path / "stack.toml"
    path.write_text(tomli_w.dumps(ring_spec))
    return path


@pytest.fixture
def run(stack, tmp_path, cli) -> Path:
    run = tmp_path / "run"
    assert cli("train", stack, "--out", run, "--no-progress")[0] == 0
    return run


def _edit_spec_json(run: Path) -> None:
    d = json.loads((run / "spec.json").read_text())
    d["backbone"]["hidden"] = [16, 16]
    (run / "spec.json").write_text(json.dumps(d))


def test_an_edited_spec_json_leaves_the_checkpoints_usable(run, stack, cli, tmp_path):
    _edit_spec_json(run)
    warned = []
    ckpt = open_checkpoint(run, warn=warned.append)
    assert ckpt.step == 4 and ckpt.spec["backbone"]["hidden"] == [32, 32]
    assert "backbone.hidden" in warned[0] and "differs from every checkpoint" in warned[0]
    code, _, err = cli("sample", run, "--n", "8", "--out", tmp_path / "x.png")
    assert code == 0 and "backbone.hidden" in err, err
    code, _, err = cli("train", stack, "--out", run, "--steps", "6", "--no-progress")
    assert code == 0 and "resuming" in err, err
    assert json.loads((run / "spec.json").read_text())["backbone"]["hidden"] == [32, 32]


def test_resuming_with_an_edited_key_names_it_and_offers_the_checkpoints_value(run, cli, tmp_path,
                                                                               ring_spec):
    import tomli_w

    ring_spec["train"].update(steps=6, log_every=2, ckpt_every=2)
    ring_spec["backbone"]["hidden"] = [16, 16]
    edited = tmp_path / "edited.toml"
    edited.write_text(tomli_w.dumps(ring_spec))
    code, _, err = cli("train", edited, "--out", run, "--no-progress")
    assert code == 3 and "backbone.hidden: [32, 32] then, [16, 16] now" in err, err
    offered = re.search(r"add (--set \S+ ?\S*?);", err).group(1)
    assert shlex.split(offered) == ["--set", "backbone.hidden=[32, 32]"]
    code, _, err = cli("train", edited, "--out", run, *shlex.split(offered), "--no-progress")
    assert code == 0 and "resuming" in err, err


def test_a_checkpoint_foreign_to_an_intact_spec_json_is_still_skipped(run, ring_spec):
    newest = list_checkpoints(run)[-1][1]
    with safe_open(str(newest), framework="pt") as fh:
        meta, data = dict(fh.metadata()), {k: fh.get_tensor(k) for k in fh.keys()}
    spec = json.loads(meta["spec"])
    spec["backbone"]["hidden"] = [16, 16]
    meta["spec"] = json.dumps(spec)
    save_file(data, str(newest), metadata=meta)
    warned = []
    ckpt = open_checkpoint(run, warn=warned.append)
    assert ckpt.step == 2 and "different stack than the run's spec.json" in warned[0]


def test_a_bookkeeping_key_never_makes_another_stack(run, ring_spec):
    newest = list_checkpoints(run)[-1][1]
    with safe_open(str(newest), framework="pt") as fh:
        meta, data = dict(fh.metadata()), {k: fh.get_tensor(k) for k in fh.keys()}
    spec = json.loads(meta["spec"])
    spec["data"]["download"] = True  # a run trained with data.download = true
    meta["spec"] = json.dumps(spec)
    save_file(data, str(newest), metadata=meta)
    ring_spec["train"].update(steps=4, log_every=2, ckpt_every=2)
    Pipeline.from_spec(ring_spec).load_checkpoint(newest)  # no "different data"
    assert same_stack(spec, {**spec, "data": {**spec["data"], "download": False}})
    assert {"data.download", "train.dist_timeout", "train.log_every"} <= BOOKKEEPING
    other = Pipeline.from_spec(ring_spec, ["backbone.hidden=[8]"])
    with pytest.raises(CheckpointError, match=r"different backbone \(backbone.hidden"):
        other.load_checkpoint(newest)


def test_an_install_hint_quotes_a_hostile_package_name():
    spec = {"backbone": {"name": "zz_net"}, "loss": {"name": "ns"}, "data": {"name": "ring"}}
    prov = {"components": {"zz_net": {"distribution": EVIL, "version": "1.0"}}}
    hint = install_hint(spec, prov, {}, {"ns", "ring"})
    command = re.search(r"\((pip install .*)\)$", hint).group(1)
    assert shlex.split(command) == ["pip", "install", f"{EVIL}==1.0"]  # one word, no `touch`


@pytest.mark.parametrize("kind", ["stack", "sweep", "parent"])
def test_suggested_commands_quote_a_hostile_path(tmp_path, kind):
    folder = tmp_path / EVIL
    folder.mkdir()
    if kind == "parent":
        (folder / "r1" / "checkpoints").mkdir(parents=True)
        target = folder
    else:
        target = folder / "x.toml"
        target.write_text('seeds = [0]\n' if kind == "sweep" else 'stack = "a"\n')
    with pytest.raises(CheckpointError) as err:
        open_checkpoint(target)
    command = re.search(r"`(gantk [^`]*)`", err.value.fix).group(1)
    words = shlex.split(command)
    assert str(target if kind != "parent" else folder / "r1") in words, words
    assert "touch" not in words


def test_set_flags_and_shell_quote():
    assert shell("gantk", "eval", "a b") == "gantk eval 'a b'"
    a = {"backbone": {"hidden": [32]}, "train": {"lr_g": 0.001, "steps": 5}}
    b = {"backbone": {"hidden": [8]}, "train": {"lr_g": 0.002, "steps": 9}}
    assert shlex.split(set_flags(a, b)) == ["--set", "backbone.hidden=[32]", "--set",
                                            "train.lr_g=0.001"]
