"""What a checkpoint records about the software that made it, and what to install when a
component it names is no longer provided by any installed plugin.

``provenance`` (checkpoint metadata, JSON): ``components`` maps each component name of the stack
to its kind, the distribution and version that registered it and the plugin's entry-point name;
``torch``, ``torchvision``, ``python`` and ``gantk`` give the versions of the run.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
from typing import Any

from .stackkeys import shell


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return ""


def record(parts: list[Any]) -> dict[str, Any]:
    """The provenance of a resolved stack's parts (each has an ``entry``, a registry Entry)."""

    import torch

    return {
        "components": {p.entry.name: {"kind": p.entry.kind, "distribution": p.entry.distribution,
                                      "version": p.entry.version, "entry_point": p.entry.plugin}
                       for p in parts},
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),  # its metadata: importing it costs start-up
        "python": platform.python_version(),
        "gantk": _version("gantk"),
    }


def stack_names(spec: dict[str, Any]) -> list[str]:
    """Component names in a stored spec (JSON object), in stack order."""

    names = [spec.get(k, {}).get("name") for k in ("backbone", "loss", "data")
             if isinstance(spec.get(k), dict)]
    names += [m.get("name") for m in spec.get("methods", []) if isinstance(m, dict)]
    return [n for n in names if isinstance(n, str)]


def install_hint(spec: dict[str, Any], provenance: dict[str, Any], plugins: dict[str, Any],
                 known: set[str]) -> str | None:
    """Which package to install for each component of ``spec`` that is not in ``known``, or None
    when every component is known. Checkpoints without provenance fall back to the list of
    plugin versions they store."""

    missing = [n for n in stack_names(spec) if n not in known]
    if not missing:
        return None
    comps = provenance.get("components") if isinstance(provenance.get("components"), dict) else {}
    said = []
    for name in missing:
        origin = comps.get(name) if isinstance(comps.get(name), dict) else {}
        dist, version = str(origin.get("distribution") or ""), str(origin.get("version") or "")
        if dist:
            pin = f"{dist}=={version}" if version else dist
            said.append(f"{name!r} came from the package {dist} {version}".rstrip()
                        + f" ({shell('pip', 'install', pin, quote=(2,))})")
        elif origin.get("entry_point"):
            said.append(f"{name!r} came from the plugin with entry point "
                        f"{origin['entry_point']!r} (no package recorded)")
        else:
            recorded = ", ".join(f"{d} {v}".rstrip() for d, v in sorted(plugins.items()))
            said.append(f"{name!r} came from one of the plugins the run recorded: "
                        f"{recorded or '(none recorded)'}")
    return ("no installed plugin provides " + ", ".join(repr(n) for n in missing) + ": "
            + "; ".join(said))
