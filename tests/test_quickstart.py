"""docs/quickstart.md runs as written: every command of its bash blocks, in order, at its small
sizes (the page promises each one works from the repository root after set-up)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "quickstart.md"


def commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", PAGE.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_the_quickstart_page_has_the_first_hour_commands():
    cmds = commands()
    verbs = [c.split()[1] for c in cmds if c.startswith(".venv/bin/gantk ")]
    assert verbs[:3] == ["list-plugins", "show", "check"]
    assert {"train", "sample", "eval", "plot", "sweep"} <= set(verbs)
    assert all(c.startswith((".venv/bin/gantk ", ".venv/bin/python ")) for c in cmds)
    assert all("runs/" in c for c in cmds if c.split()[1] in {"train", "sample", "eval", "sweep"})


def test_every_quickstart_command_runs_as_written(tmp_path):
    """Run in the repository root (the paths are relative to it), with this interpreter for
    .venv/bin/ and the outputs moved from runs/ to a temporary folder."""
    runs = tmp_path / "runs"
    for cmd in commands():
        cmd = cmd.replace("runs/", f"{runs}/")
        argv = shlex.split(cmd)
        if argv[0] == ".venv/bin/gantk":
            argv = [sys.executable, "-m", "gantk", *argv[1:]]
        elif argv[0] == ".venv/bin/python":
            argv = [sys.executable, *argv[1:]]
        out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"{cmd}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
        assert "Traceback" not in out.stderr, cmd
    assert (runs / "quick" / "grid.png").is_file() and (runs / "quick" / "grid_searched.png").is_file()
    assert (runs / "quick_sweep" / "summary.json").is_file()
