"""`training.report_to` names -> tracker classes; the optional package each one needs."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from loralab.config import Config
from loralab.errors import UserError
from loralab.training.tracking.base import Tracker

EXTRAS = {"tensorboard": ("tensorboard", "tracking"), "mlflow": ("mlflow", "tracking"),
          "wandb": ("wandb", "wandb"), "trackio": ("trackio", "trackio")}


def require(tracker: str) -> Any:
    """The tracker's package, or one line naming the extra that installs it."""
    module, extra = EXTRAS[tracker]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"training.report_to: {tracker} needs the {module} package: pip "
                        f"install 'loralab[{extra}]'") from None


def build_trackers(config: Config, run_dir: Path) -> list[Tracker]:
    from loralab.training.tracking import mlflow_tracker, other_trackers

    classes = {"tensorboard": other_trackers.TensorBoardTracker,
               "mlflow": mlflow_tracker.MlflowTracker,
               "wandb": other_trackers.WandbTracker,
               "trackio": other_trackers.TrackioTracker}
    return [classes[name](config, run_dir, require(name))
            for name in config.training.report_to]
