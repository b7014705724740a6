"""The tracker interface and the training callback that feeds the trackers."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from loralab.config import Config, flatten
from loralab.training.callbacks import TrainingCallback

TRAIN_KEYS = ("loss", "reg_loss", "learning_rate", "grad_norm")


class Tracker:
    """One experiment tracker. `start` opens the run (parameters: the flattened resolved
    config), `log` records named numbers at an optimizer step, `artifacts` stores the run
    folder's metrics.json and adapter folder, `finish` closes the run with a status:
    FINISHED, FAILED or KILLED (MLflow's names)."""

    name = "tracker"

    def start(self, run_name: str, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def log(self, metrics: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def artifacts(self, metrics_file: Path, adapter_dir: Path | None) -> None:
        return None

    def finish(self, status: str) -> None:
        return None


def line_metrics(line: dict[str, Any]) -> dict[str, float]:
    """A diagnostics.jsonl line as tracker metrics: train/loss, train/learning_rate,
    train/grad_norm, train/loss_<term>; eval/<metric> for an evaluation line."""
    if line.get("eval"):
        return {f"eval/{k}": float(v) for k, v in line.items()
                if k not in ("step", "epoch", "eval") and isinstance(v, (int, float))
                and not isinstance(v, bool)}
    return {f"train/{k}": float(v) for k, v in line.items()
            if (k in TRAIN_KEYS or k.startswith("loss_")) and isinstance(v, (int, float))}


def config_params(config: Config) -> dict[str, Any]:
    return {key: value for key, value in flatten(config.model_dump(mode="json")).items()}


class TrackingCallback(TrainingCallback):
    """Starts the trackers at the first line, logs every line, ends with the artefacts."""

    def __init__(self, config: Config, run_dir: Path, trackers: list[Tracker]) -> None:
        self.config, self.run_dir, self.trackers = config, run_dir, trackers
        self.started = False

    def start(self) -> None:
        if not self.started:
            params = config_params(self.config)
            for tracker in self.trackers:
                tracker.start(self.run_dir.name, params)
            self.started = True

    def on_log(self, line: dict[str, Any]) -> None:
        self.start()
        metrics = line_metrics(line)
        epoch = line.get("epoch")
        if isinstance(epoch, (int, float)):
            metrics["train/epoch" if not line.get("eval") else "eval/epoch"] = float(epoch)
        for tracker in self.trackers:
            tracker.log(metrics, int(line["step"]))

    def on_end(self, metrics: dict[str, Any], run_dir: Path) -> None:
        self.start()
        adapter = run_dir / metrics["adapter"] if metrics.get("adapter") else None
        final = {f"final/{k}": float(v) for k, v in (metrics.get("best") or {}).items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)}
        final["final/train_seconds"] = float(metrics.get("train_seconds") or 0.0)
        for tracker in self.trackers:
            tracker.log(final, int(metrics.get("steps") or 0))
            tracker.artifacts(run_dir / "metrics.json",
                              adapter if adapter and adapter.is_dir() else None)
            tracker.finish("FINISHED")

    def on_fail(self, error: BaseException) -> None:
        """A run that raised ends FAILED (KILLED when interrupted) in every tracker, not
        RUNNING forever; a tracker that fails to close must not hide the run's own error."""
        if not self.started:
            return
        status = "KILLED" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "FAILED"
        for tracker in self.trackers:
            try:
                tracker.finish(status)
            except Exception as exc:  # noqa: BLE001 - reported, the run's error goes on
                print(f"warning: {tracker.name} could not close the run: {exc}",
                      file=sys.stderr)


def now_ms() -> int:
    return int(time.time() * 1000)
