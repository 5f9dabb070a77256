"""The Weights & Biases logger (``train.loggers = ["wandb"]``), active only where the ``wandb``
package is installed (training is refused with ``pip install wandb`` otherwise). The W&B project
and entity come from W&B's own environment variables (``WANDB_PROJECT``, ``WANDB_ENTITY``,
``WANDB_MODE=offline``); files go under ``RUN_DIR/wandb``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import HookLogger, flat_spec


class WandbLogger(HookLogger):
    name = "wandb"
    summary = "Weights & Biases: losses, eval scores, sample grids, the spec as config (pip install wandb)"
    requires = "wandb"

    def open(self, pipeline: Any, log_dir: Path) -> Any:
        import wandb

        log_dir.mkdir(parents=True, exist_ok=True)
        return wandb.init(dir=str(log_dir), name=Path(pipeline.run_dir).name,
                          config=flat_spec(pipeline.spec.to_dict()), resume="allow")

    def scalars(self, handle: Any, step: int, values: dict[str, float]) -> None:
        handle.log(values, step=step)

    def images(self, handle: Any, step: int, tag: str, grid: Any) -> None:
        import wandb

        handle.log({tag: wandb.Image(grid.permute(1, 2, 0).numpy())}, step=step)

    def close(self, handle: Any, spec: dict[str, Any], final: dict[str, float]) -> None:
        handle.finish()


plugin = WandbLogger()
