"""The package's shape: layers, no import circle, small modules, a public plugin surface.

An AST scan of every import in gantk, including those inside functions and under TYPE_CHECKING
(import-linter, run by `make test`, checks the layers too; this scan also finds circles inside
a layer and runs with the rest of the suite). See docs/architecture.md.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

import gantk

ROOT = Path(__file__).resolve().parent.parent
CORE = Path(gantk.__file__).resolve().parent
PLUGINS = ROOT / "plugins"
MAX_LINES = 400
# what a plugin may import from: gantk's face, and these documented modules' __all__
PUBLIC_MODULES = ("gantk", "gantk.metrics")


def _module_name(path: Path, base: Path, package: str) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _modules(base: Path = CORE, package: str = "gantk") -> dict[str, Path]:
    return {_module_name(p, base, package): p for p in sorted(base.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, str, int]]:
    """``(module imported, name imported or "", line)`` for every import in the file."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, "", node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub, "", node.lineno) if sub in known else (target, a.name, node.lineno))
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for target, _, _ in _imports(name, path, set(mods)):
            if target in mods and target != name:
                graph[name].add(target)
    return graph


def _layers() -> list[list[str]]:
    """The layers contract of pyproject.toml, top first (the one place that lists them)."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in conf["contracts"] if c["type"] == "layers"]
    return [[p.strip() for p in layer.split("|")] for layer in contract["layers"]]


def _layer_of(module: str, layers: list[list[str]]) -> int | None:
    for depth, layer in enumerate(layers):
        if any(module == p or module.startswith(p + ".") for p in layer):
            return len(layers) - depth  # higher number: higher floor
    return None


def test_no_import_cycle():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import circles (function-level and TYPE_CHECKING imports count): {cycles}"


def test_lower_layers_never_import_higher_ones():
    layers, graph = _layers(), _graph()
    bad = []
    for src, targets in graph.items():
        for dst in targets:
            a, b = _layer_of(src, layers), _layer_of(dst, layers)
            if a is not None and b is not None and b > a:
                bad.append(f"{src} -> {dst}")
            if dst == "gantk" and not src.startswith(("gantk.cli", "gantk.__main__")):
                bad.append(f"{src} -> gantk (the package's face, above every layer)")
    assert not bad, "upward imports: " + "; ".join(sorted(bad))


def test_every_module_is_in_a_layer():
    layers = _layers()
    loose = [m for m in _modules() if _layer_of(m, layers) is None
             and m not in ("gantk", "gantk.__main__")]
    assert not loose, f"modules outside every layer folder: {loose} (docs/architecture.md)"


@pytest.mark.parametrize("base", [CORE, PLUGINS], ids=["gantk", "gantk_plugins"])
def test_no_module_over_the_size_limit(base):
    big = {str(p.relative_to(base)): n for p in base.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them along a seam): {big}"


def test_setuptools_lists_every_package():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {_module_name(p, CORE, "gantk") for p in CORE.rglob("__init__.py")} | \
              {_module_name(p, PLUGINS, "gantk_plugins") for p in PLUGINS.rglob("__init__.py")}
    data_only = {name for name in conf["package-data"] if name not in on_disk}  # weights/
    assert set(conf["packages"]) == on_disk | data_only
    assert all((CORE / name.removeprefix("gantk.").replace(".", "/")).is_dir()
               for name in data_only if name.startswith("gantk."))


def test_old_module_paths_resolve_through_the_one_alias_table():
    mods = _modules()
    for old, new in gantk._MOVED.items():
        assert f"gantk.{new}" in mods, f"gantk.{old} -> gantk.{new}: no such module"
        assert not (CORE / f"{old}.py").exists(), f"gantk.{old} is both a file and an alias"
    code = ("import sys, gantk; before = set(sys.modules); import gantk.sweeps, gantk.runs; "
            "from gantk.sweep_summary import summarize; from gantk.spec import parse_spec; "
            "assert gantk.sweeps is sys.modules['gantk.sweeping.sweeps']; "
            "assert gantk.runs.list_checkpoints is sys.modules['gantk.store.rundirs']"
            ".list_checkpoints; print('torch' in before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # `import gantk` stays cheap: no torch


# ---------------------------------------------------------------------------- plugin surface

def _public_names() -> dict[str, set[str]]:
    import importlib

    return {m: set(importlib.import_module(m).__all__) for m in PUBLIC_MODULES}


def _defined_names(trees) -> set[str]:
    """Every ``_name`` the modules define as a function, method, class or (instance) attribute."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def plugin_surface_problems(root: Path) -> list[str]:
    """Imports of non-public gantk names and uses of gantk objects' private members in ``root``."""
    public = _public_names()
    trees = {p: ast.parse(p.read_text()) for p in sorted(root.rglob("*.py"))}
    core = (ast.parse(p.read_text()) for p in CORE.rglob("*.py"))
    private = _defined_names(core) - _defined_names(trees.values())  # not the plugins' own
    problems = []
    for path, tree in trees.items():
        where = path.relative_to(root)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level and \
                    (node.module == "gantk" or (node.module or "").startswith("gantk.")):
                for a in node.names:
                    if a.name not in public.get(node.module, set()):
                        problems.append(f"{where}:{node.lineno} imports {a.name} from "
                                        f"{node.module}, which is not public")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("gantk.") and a.name not in public:
                        problems.append(f"{where}:{node.lineno} imports module {a.name}")
            elif isinstance(node, ast.Attribute) and node.attr in private and not (
                    isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                problems.append(f"{where}:{node.lineno} uses the private member .{node.attr}")
    return problems


def test_first_party_plugins_use_only_the_public_surface():
    problems = plugin_surface_problems(PLUGINS)
    assert not problems, ("first-party plugins must be writable by a third party: make what "
                          "they need public (docs/plugins.md, 'The public surface') or drop "
                          "it: " + "; ".join(problems))


def test_the_surface_check_catches_a_private_use(tmp_path):
    (tmp_path / "bad.py").write_text(
        "from gantk.train.trainer import Trainer\nfrom gantk import hookimpl\n"
        "def f(pipe):\n    with pipe.eval_mode():\n        return pipe._raw_data(), pipe._trainer\n")
    problems = plugin_surface_problems(tmp_path)
    assert len(problems) == 3, problems
    assert any("Trainer from gantk.train.trainer" in p for p in problems)


def test_public_surface_is_documented():
    text = (ROOT / "docs" / "plugins.md").read_text()
    section = text.split("### The public surface", 1)[1].split("\n## ", 1)[0]
    missing = [n for n in gantk.__all__ if n != "__version__" and f"`{n}`" not in section]
    assert not missing, f"docs/plugins.md, 'The public surface', does not name: {missing}"
    for module in PUBLIC_MODULES:
        assert f"`{module}`" in section
