"""diagnostics.jsonl: one JSON line per logging step (and one per evaluation), flushed as written.

Training lines: step, epoch, loss, reg_loss, learning_rate, grad_norm (losses averaged over the
micro-batches since the previous line). Evaluation lines carry `"eval": true` and the metrics.
A restart after a collapsed first epoch (training.on_collapse) is one line with `"restart"`
(what metrics.json's `restarts` records); `step` counts every optimizer step of the run, the
collapsed attempt's too, so it only grows (`offset`: the steps of the attempts before).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loralab.atomic import named_errors


class DiagnosticsLog:
    def __init__(self, path: Path, every: int, *, resume_step: int | None = None,
                 enabled: bool = True,
                 on_line: Callable[[dict[str, Any]], None] | None = None,
                 offset: int = 0) -> None:
        """`resume_step`: continue a resumed run's log, dropping lines written after the
        checkpoint (and a line cut short by the kill). `enabled` False (processes other than
        the main one) writes nothing. `on_line`: called with every line written (trackers).
        `offset`: the optimizer steps of the attempts before a restart (both steps count
        from the restarted attempt's start)."""
        self.every, self.on_line, self.offset = every, on_line, offset
        self.handle = None
        if enabled:
            kept = kept_lines(path, offset + resume_step) if resume_step is not None else []
            with named_errors(path):
                self.handle = path.open("w", encoding="utf-8")
                self.handle.writelines(kept)
                self.handle.flush()
        self._loss = self._reg = 0.0
        self._count = 0
        self._parts: dict[str, float] = {}
        self._pending: dict[str, Any] | None = None

    def add(self, loss: float, reg: float, parts: dict[str, float] | None = None) -> None:
        """`parts`: the named terms of a multi-term loss (ce, first_k_ce, kd), logged apart."""
        self._loss += loss
        self._reg += reg
        for name, value in (parts or {}).items():
            self._parts[name] = self._parts.get(name, 0.0) + value
        self._count += 1

    def maybe_write(self, step: int, epoch: float, lr: float, grad_norm: float | None) -> None:
        self._pending = {"step": self.offset + step, "epoch": epoch, "learning_rate": lr,
                         "grad_norm": grad_norm}
        if step % self.every == 0:
            self._flush_pending()

    def _flush_pending(self) -> None:
        if self._pending is None or self._count == 0:
            return
        line = {**self._pending, "loss": self._loss / self._count,
                "reg_loss": self._reg / self._count,
                **{f"loss_{k}": v / self._count for k, v in self._parts.items()}}
        self._write(line)
        self._parts = {}
        self._loss = self._reg = 0.0
        self._count = 0
        self._pending = None

    def write_eval(self, step: int, epoch: float, metrics: dict[str, Any]) -> None:
        self._write({"step": self.offset + step, "epoch": epoch, "eval": True, **{
            k: v for k, v in metrics.items() if isinstance(v, (int, float))}})

    def write_restart(self, step: int, restart: dict[str, Any]) -> None:
        """The restart line; the restarted attempt's steps are numbered on from `step`."""
        self._flush_pending()
        self._write({"step": self.offset + step, "epoch": restart["epoch"],
                     "restart": restart})
        self.offset += step

    def _write(self, line: dict[str, Any]) -> None:
        if self.handle is not None:
            with named_errors(self.handle.name):
                self.handle.write(json.dumps(line) + "\n")
                self.handle.flush()
            if self.on_line is not None:
                self.on_line(line)

    def close(self, step: int, epoch: float) -> None:
        self._flush_pending()
        if self.handle is not None:
            self.handle.close()


def kept_lines(path: Path, last_step: int) -> list[str]:
    if not path.is_file():
        return []
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("step", 0) <= last_step:
            kept.append(line + "\n")
    return kept
