"""Grouping the runs of one grid or study: the parent process names the group (and, for
MLflow, opens the group's parent run) in the environment its run processes inherit; each
run's MLflow run is then a child of the parent run, in the group's experiment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from loralab.config import Config

GROUP_ENV = "LORALAB_TRACKING_GROUP"             # the grid's / study's name
MLFLOW_PARENT_ENV = "LORALAB_MLFLOW_PARENT_RUN"  # the MLflow parent run's id


def group_name() -> str | None:
    return os.environ.get(GROUP_ENV) or None


def mlflow_parent() -> str | None:
    return os.environ.get(MLFLOW_PARENT_ENV) or None


@dataclass
class Group:
    """The group's MLflow parent run (None without MLflow) and the numbers it ends with."""
    parent_run: str | None
    summary: dict[str, float] = field(default_factory=dict)


@contextmanager
def tracking_group(config: Config, name: str,
                   params: dict[str, Any] | None = None) -> Iterator[Group]:
    """Name the group for the runs started inside (their processes inherit it); with MLflow
    among the base config's trackers, open the parent run in the experiment
    tracking_project or `name`, closed at the end with `Group.summary`. A missing package
    or an unwritable URI is refused here, before any run. The environment is restored."""
    saved = {key: os.environ.get(key) for key in (GROUP_ENV, MLFLOW_PARENT_ENV)}
    group = Group(None)
    os.environ[GROUP_ENV] = name
    try:
        if "mlflow" in config.training.report_to:
            from loralab.training.tracking.mlflow_tracker import open_parent_run

            group.parent_run = open_parent_run(config, name, params or {})
            os.environ[MLFLOW_PARENT_ENV] = group.parent_run
        yield group
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if group.parent_run is not None:
        from loralab.training.tracking.mlflow_tracker import close_parent_run

        close_parent_run(config, group.parent_run, group.summary)
