"""gantk: latent-space GAN methods as pluggy plugins stacked onto any backbone.

``import gantk`` is the core: the four interfaces, the hook specs, the plugin manager and registry,
the spec models, the Pipeline and the trainer. It names no method; every method, first-party or
third-party, arrives through the ``gantk`` entry-point group.
"""

import importlib.metadata as _metadata
import typing as _typing

from .errors import (CheckpointError, DataError, GantkError, IncompatibleStackError, PluginError,
                     SpecError, TrainingError)

# The rest loads on first use (PEP 562), so `gantk --help` and a Ctrl-C during start-up do not
# wait for (or interrupt) the torch import with a traceback.
_LAZY = {
    "hookimpl": "hookspecs", "Backbone": "interfaces", "BuildContext": "interfaces",
    "Component": "interfaces", "DataInfo": "interfaces", "DInputTransform": "interfaces", "Discriminator": "interfaces",
    "LatentTransform": "interfaces", "Loss": "interfaces", "Regularizer": "interfaces",
    "StepContext": "interfaces", "Pipeline": "pipeline", "get_plugin_manager": "plugins",
    "get_registry": "plugins", "temporary_plugin": "plugins", "StackSpec": "spec",
    "parse_spec": "spec", "Sweep": "sweeps", "sweep": "sweeps",
}

if _typing.TYPE_CHECKING:  # pragma: no cover
    from .hookspecs import hookimpl
    from .interfaces import (Backbone, BuildContext, Component, DataInfo, DInputTransform,
                             Discriminator, LatentTransform, Loss, Regularizer, StepContext)
    from .pipeline import Pipeline
    from .plugins import get_plugin_manager, get_registry, temporary_plugin
    from .spec import StackSpec, parse_spec
    from .sweeps import Sweep, sweep


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gantk' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


try:
    __version__ = _metadata.version("gantk")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = [
    "Backbone", "BuildContext", "CheckpointError", "Component", "DataError", "DataInfo",
    "DInputTransform",
    "Discriminator", "GantkError", "IncompatibleStackError", "LatentTransform", "Loss", "Pipeline",
    "PluginError", "Regularizer", "SpecError", "StackSpec", "StepContext", "TrainingError",
    "Sweep", "get_plugin_manager", "get_registry", "hookimpl", "parse_spec", "sweep",
    "temporary_plugin",
    "__version__",
]
