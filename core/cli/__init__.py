"""The command line, the top floor: ``gantk`` subcommands over the library below."""

from .app import build_parser, main

__all__ = ["build_parser", "main"]
