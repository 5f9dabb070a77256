"""Fixed costs of start-up (issue 31): what a fresh process imports for `gantk --version`, a Ctrl-C
while gantk starts, and reading the digits. Each check runs a fresh interpreter and looks at
``sys.modules``: what matters is what is imported, not a wall time on a shared machine."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from gantk.cli.entry import asks_version

HEAVY = ("torch", "sklearn", "matplotlib", "scipy", "cleanfid", "torchvision")


def _fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter; it sets ``out``; return it with the heavy modules seen."""
    script = (code + "\nimport json, sys\nout['heavy'] = [m for m in %r if m in sys.modules]\n"
              "print('RESULT ' + json.dumps(out))") % (HEAVY,)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    result["stdout"], result["stderr"] = proc.stdout, proc.stderr
    return result


def test_gantk_version_imports_no_torch():
    out = _fresh("import sys\nsys.argv = ['gantk', '--version']\n"
                 "from gantk.cli.entry import main\nout = {'rc': main()}")
    assert out["rc"] == 0 and out["heavy"] == []
    assert out["stdout"].startswith("gantk ") and "torch " in out["stdout"]
    # the same through `python -m gantk`, with the import log: no torch module at all
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "gantk", "--version"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("gantk ")
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert not {m for m in imported if m == "torch" or m.startswith("torch.")}


@pytest.mark.parametrize("argv,expected", [
    (["--version"], True), (["--debug", "--version"], True), (["--strict", "--version"], True),
    (["train", "s.toml", "--version"], False), (["--help", "--version"], False),
    (["-p", "no:x", "--version"], False), ([], False), (["list-plugins"], False),
])
def test_only_a_top_level_version_flag_takes_the_fast_path(argv, expected):
    assert asks_version(argv) is expected


def test_ctrl_c_while_starting_is_one_line_and_imports_no_torch():
    """An interrupt while the parser is built (issue 30): the `finally` block must not import
    torch (2 s, and a traceback from a half-imported torch) to leave a process group that cannot
    exist."""
    out = _fresh("import gantk.cli.app as app\n"
                 "def interrupted():\n    raise KeyboardInterrupt\n"
                 "app.build_parser = interrupted\n"
                 "out = {'rc': app.main(['list-plugins'])}")
    assert out["rc"] == 130 and "torch" not in out["heavy"]
    assert "interrupted:" in out["stdout"] + out["stderr"]
    assert "Traceback" not in out["stderr"]


def test_gantk_help_imports_no_torch():
    out = _fresh("import sys\nsys.argv = ['gantk', '--help']\nfrom gantk.cli.entry import main\n"
                 "try:\n    main()\nexcept SystemExit as e:\n    out = {'rc': e.code}")
    assert out["rc"] == 0 and "torch" not in out["heavy"]


def test_digits_are_read_as_scikit_learn_reads_them_without_importing_it():
    from sklearn.datasets import load_digits

    from gantk.datasets.digits_file import digits_arrays

    images, target = digits_arrays()
    ref = load_digits()
    assert images.dtype == ref.images.dtype and np.array_equal(images, ref.images)
    assert np.array_equal(target, ref.target) and target.dtype.kind == "i"
    out = _fresh("from gantk.datasets.sources import DigitsParams, load_digits\n"
                 "from gantk.metrics.digits_classifier import load_digits_arrays\n"
                 "x, y = load_digits(DigitsParams(resolution=8))\n"
                 "a, b = load_digits_arrays()\n"
                 "out = {'n': len(x), 'm': len(a), 'lo': float(x.min()), 'hi': float(x.max())}")
    assert out["n"] == out["m"] == 1797 and (out["lo"], out["hi"]) == (-1.0, 1.0)
    assert "sklearn" not in out["heavy"] and "scipy" not in out["heavy"]
