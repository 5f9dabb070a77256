"""CPU time a fresh process spends loading every gantk plugin (what each command does first).

Each round starts ``python -c "...get_plugin_manager().registry"`` and reads the child's user+sys
CPU seconds from ``resource.getrusage`` (CPU time, not wall time, so that other processes on a
shared machine disturb it less); the figure reported is the median over rounds. It also prints
which heavy optional libraries the load imported: none should be (they are imported where used).

    python benchmarks/startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys

HEAVY = ("cleanfid", "torchvision", "torch._dynamo", "sklearn", "matplotlib", "scipy")
CODE = ("import sys, gantk.stack.plugins as p; p.get_plugin_manager().registry; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")


def one_round() -> tuple[float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    times, imported = [], ""
    for _ in range(args.rounds):
        cpu, imported = one_round()
        times.append(cpu)
    print(f"plugin load: median {statistics.median(times):.2f} s CPU over {args.rounds} rounds "
          f"(min {min(times):.2f}, max {max(times):.2f})")
    print(f"heavy optional libraries imported: {imported or 'none'}")


if __name__ == "__main__":
    main()
