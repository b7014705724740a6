"""Experiment tracking: `training.report_to: [tensorboard, mlflow, trackio, wandb]`.

Each tracker is one small class behind one interface (base.Tracker); base.TrackingCallback
feeds every tracker from the training callbacks: each diagnostics.jsonl line (per-step loss,
learning rate, grad norm; every evaluation metric) with the same numbers, the resolved config
as parameters, metrics.json and the adapter folder as artefacts at the end.

    tensorboard   RUN/tensorboard/ event files (torch.utils.tensorboard)
    mlflow        training.tracking_uri (default: $MLFLOW_TRACKING_URI, else
                  sqlite:///mlflow.db in the working folder); experiment tracking_project,
                  else the grid's / study's name, else the run's; trials of one study are
                  children of the study's parent run (group.py)
    wandb         offline runs in RUN/wandb/ (project tracking_project), grouped by study
    trackio       local Trackio project (tracking_project), grouped by study

Building the trackers imports their packages and checks the tracking URI, before any data
or model loads: a missing package is one line naming the extra, an unwritable URI exit 2.
"""

from __future__ import annotations

from pathlib import Path

from loralab.config import Config
from loralab.training.callbacks import TrainingCallback
from loralab.training.tracking.base import TrackingCallback
from loralab.training.tracking.registry import build_trackers


def tracking_callbacks(config: Config, run_dir: Path) -> list[TrainingCallback]:
    """One callback feeding the trackers `training.report_to` names (none: no callback)."""
    if not config.training.report_to:
        return []
    return [TrackingCallback(config, run_dir, build_trackers(config, run_dir))]


__all__ = ["tracking_callbacks"]
