"""The Weights & Biases logger (``train.loggers = ["wandb"]``), active only where the ``wandb``
package is installed (training is refused with ``pip install wandb`` otherwise; ``pip install
gantk[wandb]``).

The W&B project, entity and mode come from W&B's own environment variables (``WANDB_PROJECT``,
``WANDB_ENTITY``, ``WANDB_MODE=offline`` for no network: ``wandb sync RUN_DIR/wandb/wandb/*``
uploads later); files go under ``RUN_DIR/wandb``. Logged: every logged training value and
evaluation score at its step, each sample grid as an image (``samples``, uint8), the resolved spec
as the run's config. The W&B run id is kept in ``RUN_DIR/wandb/run.json``: a resumed training
continues the same W&B run (``resume="allow"`` with that id; offline, each session is a folder of
its own with the same id, which ``wandb sync`` merges into one run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import HookLogger, flat_spec, read_run_id, to_uint8_hwc, write_run_id


class WandbLogger(HookLogger):
    name = "wandb"
    summary = "Weights & Biases: losses, eval scores, sample grids, the spec as config (pip install wandb)"
    requires = "wandb"

    def open(self, pipeline: Any, log_dir: Path) -> Any:
        import wandb

        log_dir = log_dir.resolve()
        log_dir.mkdir(parents=True, exist_ok=True)
        previous = read_run_id(log_dir)
        again = {} if previous is None else {"id": previous["run_id"], "resume": "allow"}
        run = wandb.init(dir=str(log_dir), reinit="create_new",
                         name=Path(pipeline.run_dir).resolve().name,
                         config=flat_spec(pipeline.spec.to_dict()), **again)
        if previous is None:
            write_run_id(log_dir, {"run_id": run.id})
        return run

    def scalars(self, handle: Any, step: int, values: dict[str, float]) -> None:
        handle.log(values, step=step)

    def images(self, handle: Any, step: int, tag: str, grid: Any) -> None:
        import wandb

        handle.log({tag: wandb.Image(to_uint8_hwc(grid))}, step=step)

    def close(self, handle: Any, spec: dict[str, Any], final: dict[str, float]) -> None:
        handle.finish()


plugin = WandbLogger()
