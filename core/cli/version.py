"""``gantk --version``'s text, from installed metadata only: the entry point answers it without
importing the command line, the parser offers the same text."""

from __future__ import annotations


def version_text() -> str:
    """``gantk X (torch Y, torchvision Z, Python W)``: what a bug report needs, read from the
    installed distributions' metadata, without importing torch."""

    import importlib.metadata as md
    import platform

    from .. import __version__

    def dist(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    return (f"gantk {__version__} (torch {dist('torch')}, torchvision {dist('torchvision')}, "
            f"Python {platform.python_version()})")
