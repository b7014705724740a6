"""One grid run as the results index and the comparison report see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FINISHED, FAILED, KILLED, RUNNING, PENDING = "finished", "failed", "killed", "running", "pending"


@dataclass
class RunRecord:
    id: str                       # short hash of the resolved config
    name: str                     # readable name, e.g. mrpc-minilm-r8-a16-l6-s0
    status: str                   # finished | failed | killed | running | pending
    path: Path                    # the run folder (config.yaml, diagnostics.jsonl, metrics.json)
    model: str                    # model label, e.g. minilm
    dataset: str                  # dataset label, e.g. mrpc
    seed: int
    baseline: bool                # the no-LoRA run of its model x dataset
    variant: str                  # the name without the seed: one configuration over seeds
    params: dict[str, Any] = field(default_factory=dict)   # dotted key -> value, vs the base
    config: dict[str, Any] = field(default_factory=dict)   # the full resolved config
    metrics: dict[str, Any] | None = None                  # metrics.json, once finished
    error: str | None = None
    log_tail: str | None = None
    started: float | None = None  # unix time
    ended: float | None = None
    attempts: int = 0
    trial: int | None = None      # a `loralab tune` trial: its number in the study
    trial_state: str | None = None  # complete | pruned | failed (None: not a trial)

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return round(self.ended - self.started, 3)

    @property
    def diagnostics_path(self) -> Path:
        return self.path / "diagnostics.jsonl"

    def chosen_metrics(self) -> dict[str, Any]:
        """Validation metrics of the weights that were saved (best or last)."""
        if not self.metrics:
            return {}
        key = "best" if self.metrics.get("saved", "best") == "best" else "final"
        return self.metrics.get(key) or self.metrics.get("final") or {}
