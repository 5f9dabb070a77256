"""docs/plugins.md as a plugin author uses it: every Python block in it runs and does what the
guide says, the finished plugin is the example package's code, and the reference tables name
every registration keyword and context field."""

from __future__ import annotations

import ast
import dataclasses
import re
import types
from pathlib import Path

import pytest
import torch

import gantk
import gantk.stack.plugins as plugins_mod
from gantk.stack.plugins import PluginManager
from gantk.stack.registry import KEYWORDS

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "plugins.md").read_text()
BLOCKS = {b.splitlines()[0]: b for b in re.findall(r"```python\n(.*?)```", GUIDE, re.S)}
MINIMAL = "# gantk_example_plugin/__init__.py (first version)"
DRIFT = "# gantk_drift_plugin/__init__.py"
TESTS = "# tests/test_feature_matching.py"
EXAMPLE = ROOT / "examples" / "gantk-plugin-example" / "gantk_example_plugin" / "__init__.py"
FINISHED = EXAMPLE.read_text().splitlines()[0]  # the finished plugin opens with its docstring
RING = {"stack": "backbone=mlp + data=ring", "seed": 0, "backbone": {"hidden": [16]},
        "data": {"per_mode": 50}, "train": {"batch_size": 32, "device": "cpu"}}


def _module(first_line: str, name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    exec(compile(BLOCKS[first_line], f"docs/plugins.md [{first_line}]", "exec"), mod.__dict__)
    return mod


def _without_docstrings(code: str) -> str:
    tree = ast.parse(code)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def _train(module: types.ModuleType, method: str, steps: int = 2) -> dict[str, float]:
    pm = PluginManager(disabled=["feature-matching"])  # the installed example plugin, same names
    pm.register(module, name="guide")
    spec = {**RING, "stack": f"{RING['stack']} + {method}"}
    return gantk.Pipeline.from_spec(spec, manager=pm).train(steps=steps, progress=False)


def test_every_python_block_is_run_here():
    blocks = re.findall(r"```python\n(.*?)```", GUIDE, re.S)
    assert len(blocks) == len(BLOCKS) == 4
    assert set(BLOCKS) == {MINIMAL, FINISHED, DRIFT, TESTS}


def test_the_minimal_plugin_trains_and_computes_its_equation():
    mod = _module(MINIMAL, "guide_minimal")
    real, fake = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.zeros(2, 2)
    assert mod.feature_matching(real, fake).item() == 2.0**2 + 3.0**2
    logs = _train(mod, "feature_matching")
    assert "feature_matching/fm" in logs and logs["feature_matching/fm"] >= 0


def test_the_finished_plugin_is_the_example_package():
    block = BLOCKS[FINISHED]
    assert _without_docstrings(block) == _without_docstrings(EXAMPLE.read_text())


def test_the_d_side_regulariser_adds_its_term_to_d():
    mod = _module(DRIFT, "guide_drift")
    reg = mod.LogitDrift(mod.DriftParams(epsilon=0.1))
    ctx = types.SimpleNamespace(real_logits=torch.tensor([1.0, 2.0, 3.0]))
    assert reg.d_terms(ctx)["drift"].item() == pytest.approx(0.1 * 14 / 3)
    assert reg.g_terms(ctx) == {}  # D's side only
    logs = _train(mod, "logit_drift")
    assert "logit_drift/drift" in logs and logs["logit_drift/drift"] > 0


def test_the_test_snippet_passes_against_the_installed_example(monkeypatch):
    monkeypatch.setattr(plugins_mod, "_default", None)  # a fresh default manager for the snippet
    mod = _module(TESTS, "guide_tests")
    tests = [getattr(mod, n) for n in dir(mod) if n.startswith("test_")]
    assert len(tests) == 3
    for test in tests:
        test()
    monkeypatch.setattr(plugins_mod, "_default", None)


def test_the_reference_names_every_keyword_and_context_field():
    for keyword in (*KEYWORDS, "info"):
        assert f"| `{keyword}` |" in GUIDE, keyword
    step_fields = {f.name for f in dataclasses.fields(gantk.StepContext) if not f.name.startswith("_")}
    step_props = {n for n, v in vars(gantk.StepContext).items()
                  if isinstance(v, property) and not n.startswith("_")}
    build_fields = {f.name for f in dataclasses.fields(gantk.BuildContext)}
    for name in step_fields | step_props | build_fields:
        assert f"`{name}`" in GUIDE, name
