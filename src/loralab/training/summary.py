"""The one-line summary printed at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loralab.training.adaptive import min_steps_note

SHOWN = ("accuracy", "f1_binary", "f1_macro", "pearson", "spearman", "entity_f1",
         "entity_precision", "entity_recall", "exact_match", "qa_f1", "valid_json",
         "schema_compliance", "intent_accuracy", "json_entity_f1", "mc_accuracy", "pass@1",
         "bleu", "rougeL")


def summary_line(metrics: dict[str, Any], run_dir: Path) -> str:
    best = metrics["best"] if metrics.get("saved", "best") == "best" else metrics["final"]
    shown = ", ".join(f"{k}={best[k]:.4f}" for k in SHOWN if isinstance(best.get(k), float))
    if not shown and isinstance(best.get("loss"), float):
        shown = f"loss={best['loss']:.4f}"
    epoch = metrics.get("best_epoch")
    where = f" (best at epoch {epoch:g})" if epoch is not None and best is metrics["best"] \
        else " (last weights)"
    raised = min_steps_note(metrics.get("notes") or [])
    where += f" ({raised})" if raised else ""
    return (f"done: {metrics.get('name') or metrics['task']} {shown}{where}, "
            f"{metrics['train_seconds']:.1f}s training, "
            f"{metrics['trainable_parameters']:,} trainable params -> "
            f"{run_dir / metrics['adapter'] if metrics.get('adapter') else run_dir}")


def multi_summary_line(metrics: dict[str, Any], run_dir: Path) -> str:
    """One line for a run of several adapters: each adapter's headline number."""
    parts = []
    for name, run in metrics["adapters"].items():
        best = run["best"] if run.get("saved", "best") == "best" else run["final"]
        shown = next((f"{k}={best[k]:.4f}" for k in SHOWN if isinstance(best.get(k), float)),
                     f"loss={best['loss']:.4f}" if isinstance(best.get("loss"), float) else "")
        parts.append(f"{name} {shown}".strip())
    return (f"done: {metrics['name']}: {len(parts)} adapters on one base ({'; '.join(parts)}), "
            f"{metrics['train_seconds']:.1f}s training -> "
            f"{run_dir / metrics['multi_adapter_folder']}")
