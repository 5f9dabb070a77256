"""The ``gantk`` console script's entry point.

It imports nothing beyond the standard library before it can catch Ctrl-C, so an interrupt while
gantk starts (importing rich, torch, the plugins) prints one line instead of a traceback. The
command line itself is :func:`gantk.cli.main`.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from .app import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: gantk was stopped by Ctrl-C while starting; nothing was "
                         "written.\n")
        return 130
    return run()
