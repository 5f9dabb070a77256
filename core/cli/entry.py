"""The ``gantk`` console script's entry point.

It imports nothing beyond the standard library before it can catch Ctrl-C, so an interrupt while
gantk starts (importing rich, torch, the plugins) prints one line instead of a traceback. The
command line itself is :func:`gantk.cli.main`. ``gantk --version`` is answered here, from the
installed metadata, without importing the command line or torch (a fresh process in about 0.1 s).
"""

from __future__ import annotations

import sys


def asks_version(argv: list[str]) -> bool:
    """``--version`` among the top-level flags (before the subcommand), as argparse reads it:
    ``gantk --version``, ``gantk --debug --version``; not ``gantk train s.toml --version``."""

    for arg in argv:
        if arg == "--version":
            return True
        if arg not in ("--debug", "--strict"):
            return False  # the subcommand, --help, -p NAME...: argparse decides from here
    return False


def main() -> int:
    try:
        if asks_version(sys.argv[1:]):
            from .version import version_text

            sys.stdout.write(version_text() + "\n")
            return 0
        from .app import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: gantk was stopped by Ctrl-C while starting; nothing was "
                         "written.\n")
        return 130
    return run()
