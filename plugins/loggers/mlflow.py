"""The MLflow logger (``train.loggers = ["mlflow"]``), active only where the ``mlflow`` package is
installed (training is refused with ``pip install mlflow`` otherwise). Runs are tracked at
``MLFLOW_TRACKING_URI`` when set, else in ``RUN_DIR/mlflow`` (a local file store)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base import HookLogger, flat_spec


class MlflowLogger(HookLogger):
    name = "mlflow"
    summary = "MLflow: losses, eval scores, sample grids, the spec as params (pip install mlflow)"
    requires = "mlflow"

    def open(self, pipeline: Any, log_dir: Path) -> Any:
        import mlflow

        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(log_dir.resolve().as_uri())
        run = mlflow.start_run(run_name=Path(pipeline.run_dir).name)
        params = flat_spec(pipeline.spec.to_dict())
        mlflow.log_params({k: str(v)[:250] for k, v in params.items()})
        return run

    def scalars(self, handle: Any, step: int, values: dict[str, float]) -> None:
        import mlflow

        mlflow.log_metrics(values, step=step)

    def images(self, handle: Any, step: int, tag: str, grid: Any) -> None:
        import mlflow

        mlflow.log_image(grid.permute(1, 2, 0).numpy(), key=tag, step=step)

    def close(self, handle: Any, spec: dict[str, Any], final: dict[str, float]) -> None:
        import mlflow

        mlflow.end_run()


plugin = MlflowLogger()
