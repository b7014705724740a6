"""diagnostics.jsonl: one JSON line per logging step (and one per evaluation), flushed as written.

Training lines: step, epoch, loss, reg_loss, learning_rate, grad_norm (losses averaged over the
micro-batches since the previous line). Evaluation lines carry `"eval": true` and the metrics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class DiagnosticsLog:
    def __init__(self, path: Path, every: int) -> None:
        self.every = every
        self.handle = path.open("w", encoding="utf-8")
        self._loss = self._reg = 0.0
        self._count = 0
        self._pending: dict[str, Any] | None = None

    def add(self, loss: float, reg: float) -> None:
        self._loss += loss
        self._reg += reg
        self._count += 1

    def maybe_write(self, step: int, epoch: float, lr: float, grad_norm: float | None) -> None:
        self._pending = {"step": step, "epoch": epoch, "learning_rate": lr,
                         "grad_norm": grad_norm}
        if step % self.every == 0:
            self._flush_pending()

    def _flush_pending(self) -> None:
        if self._pending is None or self._count == 0:
            return
        line = {**self._pending, "loss": self._loss / self._count,
                "reg_loss": self._reg / self._count}
        self._write(line)
        self._loss = self._reg = 0.0
        self._count = 0
        self._pending = None

    def write_eval(self, step: int, epoch: float, metrics: dict[str, Any]) -> None:
        self._write({"step": step, "epoch": epoch, "eval": True, **{
            k: v for k, v in metrics.items() if isinstance(v, (int, float))}})

    def _write(self, line: dict[str, Any]) -> None:
        self.handle.write(json.dumps(line) + "\n")
        self.handle.flush()

    def close(self, step: int, epoch: float) -> None:
        self._flush_pending()
        self.handle.close()
