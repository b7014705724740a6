"""MLflow: one MLflow run per loralab run, through MlflowClient (no global active run, so
threads and several adapters in one process stay apart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loralab.config import Config
from loralab.training.tracking.base import Tracker, now_ms
from loralab.training.tracking.group import group_name, mlflow_parent
from loralab.training.tracking.uri import check_tracking_uri, local_folder, tracking_uri

BATCH = 100   # MLflow's limit of parameters per log_batch call


def artifact_root(client: Any) -> str | None:
    """A local SQLite store's artefacts go beside the database (DB folder/mlartifacts), not
    into ./mlruns of whatever folder the run started in."""
    uri = client.tracking_uri
    folder = local_folder(uri) if uri.startswith("sqlite:") else None
    return (folder / "mlartifacts").as_uri() if folder is not None else None


def experiment_id(client: Any, name: str) -> str:
    """The experiment of that name, created when missing (another process may create it at
    the same moment: then it is read back)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_root(client))
    except Exception:  # noqa: BLE001 - created meanwhile by another process
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def experiment_name(config: Config, run_dir: Path) -> str:
    return (config.training.tracking_project or group_name() or config.run_name
            or run_dir.name)


class MlflowTracker(Tracker):
    name = "mlflow"

    def __init__(self, config: Config, run_dir: Path, mlflow: Any) -> None:
        self.client = client_for(config)
        self.entities = mlflow.entities
        self.experiment = experiment_name(config, run_dir)
        self.run_dir = run_dir
        self.run_id: str | None = None

    def start(self, run_name: str, params: dict[str, Any]) -> None:
        tags = {"loralab.run_folder": str(self.run_dir.resolve())}
        parent = mlflow_parent()
        if parent:
            tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(experiment_id(self.client, self.experiment),
                                     run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        items = [self.entities.Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[start:start + BATCH])

    def log(self, metrics: dict[str, float], step: int) -> None:
        stamp = now_ms()
        batch = [self.entities.Metric(k, v, stamp, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def artifacts(self, metrics_file: Path, adapter_dir: Path | None) -> None:
        self.client.log_artifact(self.run_id, str(metrics_file))
        if adapter_dir is not None:
            self.client.log_artifacts(self.run_id, str(adapter_dir), artifact_path="adapter")

    def finish(self, status: str) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status)


def client_for(config: Config) -> Any:
    import logging

    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = tracking_uri(config)
    check_tracking_uri(uri)
    return MlflowClient(uri)


def open_parent_run(config: Config, name: str, params: dict[str, Any]) -> str:
    from loralab.training.tracking.registry import require

    mlflow = require("mlflow")
    client = client_for(config)
    experiment = config.training.tracking_project or name
    run = client.create_run(experiment_id(client, experiment), run_name=name,
                            tags={"loralab.group": name})
    items = [mlflow.entities.Param(k, str(v)[:6000]) for k, v in params.items()]
    if items:
        client.log_batch(run.info.run_id, params=items[:BATCH])
    return run.info.run_id


def close_parent_run(config: Config, run_id: str, metrics: dict[str, float]) -> None:
    import mlflow

    client = client_for(config)
    stamp = now_ms()
    client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, float(v), stamp, 0)
                                      for k, v in metrics.items()])
    client.set_terminated(run_id, "FINISHED")
