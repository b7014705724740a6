"""TensorBoard, Weights & Biases (offline) and Trackio: the same metrics, each through its
own package."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from loralab.config import Config
from loralab.training.tracking.base import Tracker
from loralab.training.tracking.group import group_name

TENSORBOARD_DIR = "tensorboard"


class TensorBoardTracker(Tracker):
    """RUN/tensorboard/: one event file; the config as a text summary."""

    name = "tensorboard"

    def __init__(self, config: Config, run_dir: Path, package: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer_class, self.folder = SummaryWriter, run_dir / TENSORBOARD_DIR
        self.writer: Any = None

    def start(self, run_name: str, params: dict[str, Any]) -> None:
        self.writer = self.writer_class(log_dir=str(self.folder))
        self.writer.add_text("config", "\n".join(f"    {k}: {json.dumps(v)}"
                                                 for k, v in params.items()), 0)

    def log(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def finish(self, status: str) -> None:
        self.writer.close()


def project_name(config: Config, run_dir: Path) -> str:
    return config.training.tracking_project or group_name() or "loralab"


class WandbTracker(Tracker):
    """Offline W&B runs in RUN/wandb/ (`wandb sync` uploads them later)."""

    name = "wandb"

    def __init__(self, config: Config, run_dir: Path, wandb: Any) -> None:
        self.wandb, self.config, self.run_dir = wandb, config, run_dir
        self.run: Any = None

    def start(self, run_name: str, params: dict[str, Any]) -> None:
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = self.wandb.init(project=project_name(self.config, self.run_dir),
                                   name=run_name, group=group_name(), config=params,
                                   dir=str(self.run_dir), mode="offline", reinit=True)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def artifacts(self, metrics_file: Path, adapter_dir: Path | None) -> None:
        self.run.save(str(metrics_file), base_path=str(metrics_file.parent))

    def finish(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "FINISHED" else 1)


class TrackioTracker(Tracker):
    """A local Trackio project (its SQLite database under Trackio's own folder)."""

    name = "trackio"

    def __init__(self, config: Config, run_dir: Path, trackio: Any) -> None:
        self.trackio, self.config, self.run_dir = trackio, config, run_dir
        self.run: Any = None

    def start(self, run_name: str, params: dict[str, Any]) -> None:
        self.run = self.trackio.init(project=project_name(self.config, self.run_dir),
                                     name=run_name, group=group_name(), config=params)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.trackio.log(metrics, step=step)

    def finish(self, status: str) -> None:
        self.trackio.finish()
