"""Hooks into a training run for the code that drives or watches it (tune's pruner, trackers).

    on_log(line)                      each line diagnostics.jsonl gets (training and evaluation
                                      lines), the same dict, so what a tracker records equals
                                      the file
    on_evaluate(step, epoch, metrics, value) -> True to stop training (a pruned trial); `value`
                                      is the selection metric's value in this evaluation
    on_end(metrics, run_dir)          metrics.json written, the adapter saved
    on_fail(error)                    the run raised (diverged, an error, interrupted): the
                                      error goes on after every callback was told

A stop asked by on_evaluate ends training the way early stopping does: the best weights are
restored and saved, metrics.json is written, so a stopped run is an ordinary run folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


class TrainingCallback:
    """The interface; every method does nothing unless overridden."""

    def on_log(self, line: dict[str, Any]) -> None:
        return None

    def on_evaluate(self, step: int, epoch: float, metrics: dict[str, Any],
                    value: float) -> bool:
        return False

    def on_end(self, metrics: dict[str, Any], run_dir: Path) -> None:
        return None

    def on_fail(self, error: BaseException) -> None:
        return None


class Callbacks(TrainingCallback):
    """Several callbacks as one: every one is called; a stop from any one stops."""

    def __init__(self, callbacks: Sequence[TrainingCallback] = ()) -> None:
        self.callbacks = list(callbacks)

    def on_log(self, line: dict[str, Any]) -> None:
        for callback in self.callbacks:
            callback.on_log(line)

    def on_evaluate(self, step: int, epoch: float, metrics: dict[str, Any],
                    value: float) -> bool:
        stops = [callback.on_evaluate(step, epoch, metrics, value)
                 for callback in self.callbacks]
        return any(stops)

    def on_end(self, metrics: dict[str, Any], run_dir: Path) -> None:
        for callback in self.callbacks:
            callback.on_end(metrics, run_dir)

    def on_fail(self, error: BaseException) -> None:
        for callback in self.callbacks:
            callback.on_fail(error)
