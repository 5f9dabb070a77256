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

import os as _os
import signal as _signal
import sys as _sys


def _interrupt_while_importing(signum: int, frame: object) -> None:
    """SIGINT for the command line: mid-import (start-up, or a module loaded on first use) it
    prints one line and exits at once (a KeyboardInterrupt inside torch's import left a
    half-initialised torch that crashed later: tracebacks and segfaults); elsewhere it is the
    ordinary KeyboardInterrupt, which the CLI turns into one line."""
    f = frame  # type: ignore[assignment]
    while f is not None:
        if f.f_code.co_filename.startswith("<frozen importlib"):
            try:
                for stream in (_sys.stdout, _sys.stderr):
                    stream.flush()
                _sys.stderr.write("interrupted: gantk was stopped by Ctrl-C while loading its "
                                  "modules; nothing was written.\n")
                _sys.stderr.flush()
            finally:
                _os._exit(130)
        f = f.f_back
    raise KeyboardInterrupt


def _started_as_command() -> bool:
    """The ``gantk`` script, ``python -m gantk`` (argv[0] is "-m" while the package imports) or
    torchrun running the script; never a library import in someone else's program."""
    first = _sys.argv[0] if _sys.argv else ""
    return first == "-m" or _os.path.basename(first) in ("gantk", "gantk.exe", "gantk-script.py")


import typing as _typing  # noqa: E402 - the handler above goes in before anything slow loads

if _started_as_command() and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _interrupt_while_importing)

import importlib as _importlib  # noqa: E402
import importlib.abc as _abc  # noqa: E402
import importlib.machinery as _machinery  # noqa: E402
import importlib.metadata as _metadata  # noqa: E402
import importlib.util as _util  # noqa: E402

from .base.errors import (CheckpointError, DataError, GantkError,  # noqa: E402
                          IncompatibleStackError, PluginError, SpecError, TrainingError)

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
