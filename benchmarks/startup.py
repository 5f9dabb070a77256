"""CPU time a fresh process spends starting gantk: loading every plugin (what each command does
first), `gantk --version` and `gantk --help`.

Each round starts ``python -c "...get_plugin_manager().registry"`` and the ``gantk`` entry point
(``gantk.cli.entry.main``) with ``--version`` and with ``--help``, and ``--version`` handed to
the parser as every command was before issue 31 (``gantk.cli.app.main``), one after the other, and reads each child's user+sys CPU seconds
from ``resource.getrusage`` (CPU time, not wall time, so that other processes on a shared machine
disturb it less); the figures reported are medians over rounds, with the median wall time. It
also prints which heavy libraries each imported: torch for the plugin load (the plugins are
torch modules), none for `--version` (`--help`: see docs/performance.md).

    python benchmarks/startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "cleanfid", "torchvision", "torch._dynamo", "sklearn", "matplotlib", "scipy")
CODE = ("import sys, gantk.stack.plugins as p; p.get_plugin_manager().registry; "
        f"print('heavy=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")


PROBE = (f"import sys; print('heavy=' + ','.join(m for m in {HEAVY!r} if m in sys.modules), "
         "file=sys.stderr)")
CASES = {
    "plugin load": [sys.executable, "-c", CODE],
    "gantk --version": [sys.executable, "-c", "import sys, atexit; atexit.register(lambda: exec("
                        f"{PROBE!r})); sys.argv = ['gantk', '--version']; "
                        "from gantk.cli.entry import main; main()"],
    # what `gantk --version` cost before issue 31: the whole parser (and so torch) was built
    "--version via the parser (before)": [
        sys.executable, "-c", "import sys, atexit; atexit.register(lambda: exec("
        f"{PROBE!r})); from gantk.cli.app import main; main(['--version'])"],
    "gantk --help": [sys.executable, "-c", "import sys, atexit; atexit.register(lambda: exec("
                     f"{PROBE!r})); sys.argv = ['gantk', '--help']; "
                     "from gantk.cli.entry import main; main()"],
}


def one_round(cmd: list[str]) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    marks = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("heavy=")]
    return cpu, wall, (marks[-1][len("heavy="):] if marks else "?")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    import os

    print(f"start-up, {args.rounds} rounds, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}")
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in CASES}
    imported: dict[str, str] = {}
    for _ in range(args.rounds):  # the cases alternate, so the machine's load falls on all alike
        for name, cmd in CASES.items():
            cpu, wall, imported[name] = one_round(cmd)
            times[name].append((cpu, wall))
    for name, ts in times.items():
        cpus = [t[0] for t in ts]
        heavy = imported[name]
        print(f"{name:>34}: median {statistics.median(cpus):.2f} s CPU (min {min(cpus):.2f}, max "
              f"{max(cpus):.2f}), median {statistics.median(t[1] for t in ts):.2f} s wall; heavy "
              f"libraries imported: {heavy or 'none'}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
