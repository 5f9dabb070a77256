"""gantk: latent-space GAN methods as pluggy plugins stacked onto any backbone.

``import gantk`` is the core: the four interfaces, the hook specs, the plugin manager and registry,
the spec models, the Pipeline and the trainer. It names no method; every method, first-party or
third-party, arrives through the ``gantk`` entry-point group.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import (CheckpointError, DataError, GantkError, IncompatibleStackError, PluginError,
                     SpecError, TrainingError)
from .hookspecs import hookimpl
from .interfaces import (Backbone, BuildContext, Component, DataInfo, Discriminator,
                         LatentTransform, Loss, Regularizer, StepContext)
from .pipeline import Pipeline
from .plugins import get_plugin_manager, get_registry, temporary_plugin
from .spec import StackSpec, parse_spec

try:
    __version__ = version("gantk")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = [
    "Backbone", "BuildContext", "CheckpointError", "Component", "DataError", "DataInfo",
    "Discriminator", "GantkError", "IncompatibleStackError", "LatentTransform", "Loss", "Pipeline",
    "PluginError", "Regularizer", "SpecError", "StackSpec", "StepContext", "TrainingError",
    "get_plugin_manager", "get_registry", "hookimpl", "parse_spec", "temporary_plugin",
    "__version__",
]
