"""One source per fact: each fact below is kept in one place, and these tests fail when a second
copy appears (docs/architecture.md, "Where a new capability goes")."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import gantk
from gantk import get_plugin_manager
from gantk.metrics.scores import NOT_SCORES, score_keys

ROOT = Path(__file__).resolve().parent.parent
CORE = Path(gantk.__file__).resolve().parent
PLUGINS = ROOT / "plugins"


def _trees(*roots: Path):
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            yield path, ast.parse(path.read_text())


# ---------------------------------------------------------------------------- registry.toml

def test_one_registry_file_shipped_as_package_data():
    """The top-level registry.toml is the source; plugins/registry.toml is a link to it, which
    the build copies into the wheel (package data of gantk_plugins) and a checkout reads."""
    files = [p for p in ROOT.rglob("registry.toml")
             if ".venv" not in p.parts and not p.is_symlink() and "build" not in p.parts]
    assert files == [ROOT / "registry.toml"], files
    link = PLUGINS / "registry.toml"
    assert link.is_symlink() and link.resolve() == (ROOT / "registry.toml").resolve()
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "registry.toml" in conf["package-data"]["gantk_plugins"]
    loaded = [Path(f).resolve() for files in get_plugin_manager().hook.gantk_registry_files()
              for f in files]
    assert (ROOT / "registry.toml").resolve() in loaded


def test_the_registry_file_describes_every_first_party_method():
    described = set(tomllib.loads((ROOT / "registry.toml").read_text())["components"])
    registry = get_plugin_manager().registry
    first_party = {name for name, e in registry.entries.items()  # the papers' methods
                   if e.kind in ("method", "regularizer", "latent_transform")
                   and e.distribution == "gantk" and e.plugin != "backbones"}
    assert "aae" in first_party and len(first_party) >= 10
    assert first_party <= described, sorted(first_party - described)


# ---------------------------------------------------------------------------- score keys

def test_one_set_of_non_score_keys():
    """Only gantk.metrics.scores says which result keys are bookkeeping, not scores."""
    copies = []
    for path, tree in _trees(CORE):
        if path.name == "scores.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Set, ast.List, ast.Tuple)):
                values = {getattr(e, "value", None) for e in node.elts}
                if {"it_per_s", "n_real"} <= values:
                    copies.append(f"{path.relative_to(CORE)}:{node.lineno}")
    assert not copies, f"a second 'which keys are scores' set: {copies}"


def test_score_keys():
    row = {"step": 10, "n": 100, "seed": 1, "it_per_s": 3.0, "fid": 12.5, "kid": float("inf"),
           "ok": True, "feature_space": "digits", "coverage": 0.5}
    assert score_keys(row) == ["fid", "coverage"]
    assert score_keys(row, keep_inf=True) == ["fid", "kid", "coverage"]
    assert {"step", "seed", "it_per_s"} <= NOT_SCORES


# ---------------------------------------------------------------------------- sampling generator

def test_one_place_picks_the_sampling_generator():
    """``Pipeline.sampling_generator`` is the EMA copy when there is one; nobody else chooses."""
    hand_picked = []
    for path, tree in _trees(CORE, PLUGINS, ROOT / "tests"):
        for node in ast.walk(tree):
            if isinstance(node, ast.IfExp) and isinstance(node.test, ast.Compare) and \
                    isinstance(node.test.left, ast.Attribute) and node.test.left.attr == "ema" \
                    and isinstance(node.orelse, ast.Attribute) and node.orelse.attr == "generator":
                hand_picked.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert [h.rsplit(":", 1)[0] for h in hand_picked] == ["core/facade/sampler.py"], hand_picked


# ---------------------------------------------------------------------------- file writes

WRITERS = {"write_text", "write_bytes", "savefig", "save", "savez", "savez_compressed", "save_file"}
# writes that are not files of a run: the worker's log is its stdout stream, opened for the child
ALLOWED = {"sweeping/launch.py": "open"}


def _unsafe_writes(tree: ast.AST) -> list[tuple[int, str]]:
    inside_atomic = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
                isinstance(i.context_expr, ast.Call) and "atomic_path" in ast.unparse(
                    i.context_expr.func) for i in node.items):
            inside_atomic |= {id(sub) for sub in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in inside_atomic:
            continue
        func = ast.unparse(node.func)
        name = func.rsplit(".", 1)[-1]
        mode = node.args[1] if len(node.args) > 1 else next(
            (k.value for k in node.keywords if k.arg == "mode"), None)
        if name in WRITERS and "." in func or func in ("os.replace", "os.rename") or (
                func == "open" and isinstance(mode, ast.Constant) and set(str(mode.value)) & set("wax")):
            found.append((node.lineno, name))
    return found


def test_every_file_write_goes_through_safeio():
    """Atomic, fsynced writes (gantk.base.safeio: atomic_write, atomic_path, append_jsonl), so a
    kill or a power cut never leaves a half-written result, job file or summary."""
    bad = []
    for path, tree in _trees(CORE):
        rel = path.relative_to(CORE).as_posix()
        if rel == "base/safeio.py":
            continue
        bad += [f"{rel}:{line} {name}" for line, name in _unsafe_writes(tree)
                if ALLOWED.get(rel) != name]
    assert not bad, f"file writes outside gantk.base.safeio: {bad}"


def test_the_write_scan_sees_a_bare_write():
    tree = ast.parse("import os\nfrom pathlib import Path\nPath('x').write_text('y')\n"
                     "os.replace('a', 'b')\nopen('f', 'w')\nwith atomic_path(p) as t:\n"
                     "    open(t, 'wb')\n")
    assert [n for _, n in _unsafe_writes(tree)] == ["write_text", "replace", "open"]
