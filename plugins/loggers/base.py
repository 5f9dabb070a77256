"""What every first-party logger shares: the event hooks, and when a logger is on.

A logger is a pluggy plugin *object* whose methods are the event hooks of ``gantk.stack.hookspecs``
(``gantk_on_step_end``, ``gantk_on_sample``, ``gantk_on_evaluate``, ``gantk_on_train_end``): the
trainer never calls a logger, it fires events and whatever plugin is listening answers. A subclass
only says how to open its backend and write scalars, images and the resolved spec. The hooks act
for a pipeline whose ``train.loggers`` names the logger and that trains into a run directory; one
backend is opened per pipeline at its first logged step and closed when training ends. Tracker
loggers (wandb, mlflow) write their run's id to ``RUN_DIR/<logger>/run.json`` and a resumed
training continues that run instead of starting a second one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gantk import hookimpl


def flat_spec(spec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr_g": 2e-4}, "methods": [{"name": "clr"}]}`` ->
    ``{"train.lr_g": 2e-4, "methods.0.name": "clr"}`` (values kept when int/float/bool/str)."""

    out: dict[str, Any] = {}
    items = spec.items() if isinstance(spec, dict) else enumerate(spec)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, (dict, list, tuple)):
            out.update(flat_spec(value if not isinstance(value, tuple) else list(value),
                                 prefix=f"{name}."))
        elif value is not None:
            out[name] = value if isinstance(value, (int, float, bool, str)) else str(value)
    return out


def to_uint8_hwc(grid: Any) -> Any:
    """A sample grid (float CHW in [0, 1], as the hooks pass it) as the uint8 HWC array image
    libraries expect: ``round(255 x)``, clipped. (W&B and MLflow read a float array as 0..255,
    so passing [0, 1] floats through gives black images.)"""
    import torch

    return (grid.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0) \
        .cpu().numpy()


def read_run_id(log_dir: Path) -> dict[str, Any] | None:
    """The tracker run this run directory logged to before (``LOG_DIR/run.json``), or None."""
    import json

    path = log_dir / RUN_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("run_id"), str) else None


def write_run_id(log_dir: Path, data: dict[str, Any]) -> None:
    """Remember the tracker run (atomically), so a resumed training continues it."""
    import json
    import os

    log_dir.mkdir(parents=True, exist_ok=True)
    tmp = log_dir / f".{RUN_FILE}.tmp"
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, log_dir / RUN_FILE)


#: where a tracker logger keeps the id of its run, inside its folder of the run directory
RUN_FILE = "run.json"


def numeric(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class HookLogger:
    """Subclasses set ``name``, ``summary``, ``requires`` (an optional library's import name) and
    implement ``open``, ``scalars``, ``images``, ``close``."""

    name = ""
    summary = ""
    requires: str | None = None

    def __init__(self) -> None:
        self._open: dict[int, Any] = {}  # id(pipeline) -> backend handle

    # ------------------------------------------------------------------ to implement
    def open(self, pipeline: Any, log_dir: Path) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def scalars(self, handle: Any, step: int, values: dict[str, float]) -> None:  # pragma: no cover
        raise NotImplementedError

    def images(self, handle: Any, step: int, tag: str, grid: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def close(self, handle: Any, spec: dict[str, Any], final: dict[str, float]) -> None:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ plumbing
    def wanted(self, pipeline: Any) -> bool:
        from gantk import is_main

        return (self.name in pipeline.spec.train.loggers
                and getattr(pipeline, "run_dir", None) is not None
                and is_main())  # under torchrun rank 0 owns the run's files

    def handle(self, pipeline: Any) -> Any:
        key = id(pipeline)
        if key not in self._open:
            self._open[key] = self.open(pipeline, Path(pipeline.run_dir) / self.name)
        return self._open[key]

    # ------------------------------------------------------------------ the event hooks
    @hookimpl
    def gantk_register(self, register: Any) -> None:
        register.logger(self.name, type(self), requires=self.requires, summary=self.summary)

    @hookimpl
    def gantk_on_step_end(self, pipeline: Any, step: int, logs: dict[str, float]) -> None:
        if logs and self.wanted(pipeline):
            self.scalars(self.handle(pipeline), step, numeric(logs))

    @hookimpl
    def gantk_on_sample(self, pipeline: Any, samples: Any) -> None:
        # only the grids a training run writes: a later `gantk sample` of the run logs nothing
        if id(pipeline) not in self._open or pipeline.data_info.kind != "image":
            return
        from torchvision.utils import make_grid

        grid = make_grid((samples.detach().float().cpu().clamp(-1, 1) + 1) / 2, padding=1)
        self.images(self._open[id(pipeline)], pipeline.step, "samples", grid)

    @hookimpl
    def gantk_on_evaluate(self, pipeline: Any, step: int, result: dict[str, Any]) -> None:
        if self.wanted(pipeline):
            scores = {f"eval/{k}": v for k, v in numeric(result).items()
                      if k not in ("n", "n_real", "seconds")}
            self.scalars(self.handle(pipeline), step, scores)

    @hookimpl
    def gantk_on_train_end(self, pipeline: Any, run_dir: Any) -> None:
        handle = self._open.pop(id(pipeline), None)
        if handle is not None:
            self.close(handle, pipeline.spec.to_dict(), {})
