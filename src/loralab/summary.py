"""The one-line summary printed at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def summary_line(metrics: dict[str, Any], run_dir: Path) -> str:
    best = metrics["best"] if metrics.get("saved", "best") == "best" else metrics["final"]
    shown = ", ".join(f"{k}={best[k]:.4f}" for k in
                      ("accuracy", "f1", "pearson", "spearman", "precision", "recall")
                      if isinstance(best.get(k), float))
    epoch = metrics.get("best_epoch")
    where = f" (best at epoch {epoch:g})" if epoch is not None and best is metrics["best"] \
        else " (last weights)"
    return (f"done: {metrics.get('name') or metrics['task']} {shown}{where}, "
            f"{metrics['train_seconds']:.1f}s training, "
            f"{metrics['trainable_parameters']:,} trainable params -> "
            f"{run_dir / metrics['adapter'] if metrics.get('adapter') else run_dir}")
