"""The TensorBoard logger (``train.loggers = ["tensorboard"]``): event files in
``RUN_DIR/tensorboard/`` through ``torch.utils.tensorboard``.

Scalars: every logged training value under its log key (``loss/d``, ``loss/g``, ``clr/latent``,
``d/real``...) and evaluation scores under ``eval/<key>``; images: each sample grid the run
writes, as ``samples``; hyper-parameters: the resolved spec as text (``spec``) when the run starts
and as TensorBoard hparams when it ends. ``tensorboard --logdir RUN_DIR`` shows them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import HookLogger, flat_spec


class TensorBoardLogger(HookLogger):
    name = "tensorboard"
    summary = "TensorBoard event files in RUN_DIR/tensorboard: losses, eval scores, sample grids, spec"
    requires = "tensorboard"

    def open(self, pipeline: Any, log_dir: Path) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        from gantk import spec_to_toml

        writer = SummaryWriter(log_dir=str(log_dir))
        text = spec_to_toml(pipeline.spec.to_dict())
        writer.add_text("spec", "    " + text.replace("\n", "\n    "), pipeline.step)
        writer.gantk_last = {}  # the latest value of every scalar, for the hparams summary
        return writer

    def scalars(self, handle: Any, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            handle.add_scalar(key, value, step)
        handle.gantk_last.update(values)

    def images(self, handle: Any, step: int, tag: str, grid: Any) -> None:
        handle.add_image(tag, grid, step)

    def close(self, handle: Any, spec: dict[str, Any], final: dict[str, float]) -> None:
        metrics = {f"final/{k}": v for k, v in handle.gantk_last.items()}
        handle.add_hparams(flat_spec(spec), metrics or {"final/none": 0.0}, run_name=".")
        handle.close()


plugin = TensorBoardLogger()
