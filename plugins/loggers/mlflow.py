"""The MLflow logger (``train.loggers = ["mlflow"]``), active only where the ``mlflow`` package is
installed (training is refused with ``pip install mlflow`` otherwise; ``pip install gantk[mlflow]``).

Where runs go: ``MLFLOW_TRACKING_URI`` when set (a server, a database); otherwise a SQLite store
of the run directory's own, ``RUN_DIR/mlflow/mlflow.db``, with artifacts (sample grids, the spec)
in ``RUN_DIR/mlflow/artifacts`` (MLflow 3 refuses new file stores: "the filesystem tracking
backend is in maintenance mode"). ``mlflow ui --backend-store-uri sqlite:///RUN_DIR/mlflow/mlflow.db``
shows them. The experiment is ``MLFLOW_EXPERIMENT_NAME``, else ``gantk``.

What is logged: every logged training value (``loss/d``, ``d/real``, ``ada/p``...) and evaluation
score (``eval/fid``...) as metrics at their step, each sample grid as an image (``samples``), the
resolved spec as params and as ``spec.toml``. The run's id and store are kept in
``RUN_DIR/mlflow/run.json``: a resumed training logs into the same MLflow run.

The logger talks to MLflow through an ``MlflowClient`` of its own, not the global active run, so
it neither needs nor disturbs ``mlflow.start_run`` in the calling program.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .base import HookLogger, flat_spec, read_run_id, to_uint8_hwc, write_run_id

MAX_PARAMS_PER_BATCH = 100  # MLflow's log_batch limit
MAX_PARAM_CHARS = 6000


class _Handle:
    def __init__(self, client: Any, run_id: str) -> None:
        self.client, self.run_id = client, run_id


class MlflowLogger(HookLogger):
    name = "mlflow"
    summary = ("MLflow: losses, eval scores, sample grids, the spec as params; a SQLite store in "
               "the run directory unless MLFLOW_TRACKING_URI is set (pip install mlflow)")
    requires = "mlflow"

    def open(self, pipeline: Any, log_dir: Path) -> Any:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        from gantk import spec_to_toml

        log_dir = log_dir.resolve()
        log_dir.mkdir(parents=True, exist_ok=True)
        previous = read_run_id(log_dir)
        if previous is not None:  # a resumed training: the same MLflow run, in the same store
            client = MlflowClient(tracking_uri=previous["tracking_uri"])
            client.update_run(previous["run_id"], status="RUNNING")
            return _Handle(client, previous["run_id"])
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{log_dir / 'mlflow.db'}"
        client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "gantk"
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            exp_id = exp.experiment_id
        elif os.environ.get("MLFLOW_TRACKING_URI"):
            exp_id = client.create_experiment(name)
        else:
            exp_id = client.create_experiment(name,
                                              artifact_location=(log_dir / "artifacts").as_uri())
        run = client.create_run(exp_id, run_name=Path(pipeline.run_dir).resolve().name)
        run_id = run.info.run_id
        write_run_id(log_dir, {"run_id": run_id, "tracking_uri": uri, "experiment_id": exp_id})
        params = [Param(k, str(v)[:MAX_PARAM_CHARS])
                  for k, v in flat_spec(pipeline.spec.to_dict()).items()]
        for i in range(0, len(params), MAX_PARAMS_PER_BATCH):
            client.log_batch(run_id, params=params[i:i + MAX_PARAMS_PER_BATCH])
        client.log_text(run_id, spec_to_toml(pipeline.spec.to_dict()), "spec.toml")
        return _Handle(client, run_id)

    def scalars(self, handle: Any, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, int(step)) for k, v in values.items()]
        for i in range(0, len(metrics), 1000):
            handle.client.log_batch(handle.run_id, metrics=metrics[i:i + 1000])

    def images(self, handle: Any, step: int, tag: str, grid: Any) -> None:
        handle.client.log_image(handle.run_id, to_uint8_hwc(grid), key=tag, step=int(step))

    def close(self, handle: Any, spec: dict[str, Any], final: dict[str, float]) -> None:
        handle.client.set_terminated(handle.run_id, status="FINISHED")


plugin = MlflowLogger()
