"""gantk: latent-space GAN methods as pluggy plugins stacked onto any backbone.

``import gantk`` is the package's face: the four interfaces, the hook specs, the plugin manager and
registry, the spec models, the Pipeline and sweeps, and the few helpers a plugin needs. It names no
method; every method, first-party or third-party, arrives through the ``gantk`` entry-point group.

The code lives in layer folders, each importing only the layers below it (docs/architecture.md)::

    cli/        the command line
    sweeping/   sweeps: expansion, launching, summaries, verdicts, statistics
    facade/     the Pipeline and the one training loop (run directories, progress)
    metrics/    metrics and evaluation
    sample/     sampling and pictures
    stack/      declaring and assembling a stack: spec, registry, hook specs, plugins, build
    store/      run directories on disk: checkpoints, locks, provenance, sweep job files
    train/ datasets/   the step (trainer, EMA, precision, processes, signals); data sets
    base/       interfaces, errors, safe file I/O

This module is above every layer and may name anything; no module of a layer imports it (except
the command line, for ``__version__``).
"""

import importlib as _importlib
import importlib.abc as _abc
import importlib.machinery as _machinery
import importlib.metadata as _metadata
import importlib.util as _util
import sys as _sys
import typing as _typing

from .base.errors import (CheckpointError, DataError, GantkError, IncompatibleStackError,
                          PluginError, SpecError, TrainingError)

# The rest loads on first use (PEP 562), so `gantk --help` and a Ctrl-C during start-up do not
# wait for (or interrupt) the torch import with a traceback.
_LAZY = {
    "hookimpl": "stack.hookspecs", "Backbone": "base.interfaces", "BuildContext": "base.interfaces",
    "Component": "base.interfaces", "DataInfo": "base.interfaces",
    "DInputTransform": "base.interfaces", "Discriminator": "base.interfaces",
    "LatentTransform": "base.interfaces", "Loss": "base.interfaces",
    "Regularizer": "base.interfaces", "StepContext": "base.interfaces",
    "frozen": "base.interfaces", "Pipeline": "facade.pipeline",
    "get_plugin_manager": "stack.plugins", "get_registry": "stack.plugins",
    "temporary_plugin": "stack.plugins", "StackSpec": "stack.spec", "parse_spec": "stack.spec",
    "Sweep": "sweeping.sweeps", "sweep": "sweeping.sweeps",
    # what plugins need besides the interfaces (docs/plugins.md, "The public surface")
    "EmaDefault": "train.ema", "float32_under_fp16": "train.precision",
    "is_main": "train.distributed", "spec_to_toml": "store.rundirs",
}

# Where each module of the flat layout (before 0.2, CHANGELOG.md) lives now. ``import gantk.sweeps``
# still works: the finder below hands out the module at its new place, imported only when asked
# for, so old import paths, ``python -m gantk.sweep_worker`` and entry points naming old modules
# keep working and ``import gantk`` stays cheap. The one table of old names; add none to it.
_MOVED = {
    "errors": "base.errors", "interfaces": "base.interfaces", "safeio": "base.safeio",
    "data": "datasets.sources", "streaming": "datasets.streaming", "mnist5k": "datasets.mnist5k",
    "trainer": "train.trainer", "ema": "train.ema", "precision": "train.precision",
    "distributed": "train.distributed", "signals": "train.signals",
    "checkpoint": "store.checkpoint", "runlock": "store.runlock",
    "provenance": "store.provenance", "runs": "store.rundirs",
    "spec": "stack.spec", "registry": "stack.registry", "hookspecs": "stack.hookspecs",
    "plugins": "stack.plugins", "builtin": "stack.builtin", "build": "stack.build",
    "sampling": "sample.sampling", "viz": "sample.viz",
    "evaluate": "metrics.evaluate", "refstats": "metrics.refstats",
    "pipeline": "facade.pipeline", "progress": "facade.progress",
    "sweeps": "sweeping.sweeps", "sweep_summary": "sweeping.summary",
    "sweep_report": "sweeping.report", "sweep_verdicts": "sweeping.verdicts",
    "stats": "sweeping.stats", "sweep_launch": "sweeping.launch", "sweep_worker": "sweeping.worker",
    "cli_eval": "cli.eval_cmd", "cli_sample": "cli.sample_cmd", "cli_sweep": "cli.sweep_cmd",
    "entry": "cli.entry",
}


class _MovedLoader(_abc.Loader):
    """Loads an old module name as the module at its new place: one module object under both
    names, so attributes set on one (a test's monkeypatch) are seen through the other."""

    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: _machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: _typing.Any) -> None:
        _sys.modules[module.__name__] = _importlib.import_module(self.new)

    def get_code(self, fullname: str) -> _typing.Any:  # `python -m gantk.sweep_worker`
        return _util.find_spec(self.new).loader.get_code(self.new)

    def is_package(self, fullname: str) -> bool:
        return False


class _MovedFinder(_abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: _typing.Any = None, target: _typing.Any = None
                  ) -> _machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in _MOVED:
            return None
        return _machinery.ModuleSpec(fullname, _MovedLoader(f"{__name__}.{_MOVED[name]}"))


if not any(isinstance(f, _MovedFinder) for f in _sys.meta_path):
    _sys.meta_path.insert(0, _MovedFinder())


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _MOVED:  # `import gantk; gantk.sweeps.Sweep` as before
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'gantk' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


if _typing.TYPE_CHECKING:  # pragma: no cover
    from .base.interfaces import (Backbone, BuildContext, Component, DataInfo, DInputTransform,
                                  Discriminator, LatentTransform, Loss, Regularizer, StepContext,
                                  frozen)
    from .facade.pipeline import Pipeline
    from .stack.hookspecs import hookimpl
    from .stack.plugins import get_plugin_manager, get_registry, temporary_plugin
    from .stack.spec import StackSpec, parse_spec
    from .store.rundirs import spec_to_toml
    from .sweeping.sweeps import Sweep, sweep
    from .train.distributed import is_main
    from .train.ema import EmaDefault
    from .train.precision import float32_under_fp16

try:
    __version__ = _metadata.version("gantk")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = [
    "Backbone", "BuildContext", "CheckpointError", "Component", "DataError", "DataInfo",
    "DInputTransform", "Discriminator", "EmaDefault", "GantkError", "IncompatibleStackError",
    "LatentTransform", "Loss", "Pipeline", "PluginError", "Regularizer", "SpecError", "StackSpec",
    "StepContext", "Sweep", "TrainingError", "float32_under_fp16", "frozen", "get_plugin_manager",
    "get_registry", "hookimpl", "is_main", "parse_spec", "spec_to_toml", "sweep",
    "temporary_plugin", "__version__",
]
