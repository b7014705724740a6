"""The run folder a training run leaves behind, readable by a person:

    DIR/config.yaml          the resolved config (written first)
    DIR/diagnostics.jsonl    per-step training diagnostics and per-evaluation metrics
    DIR/lora_{name}_{arch}_r{rank}/   the chosen adapter (PEFT folder + tokenizer + labels)
    DIR/metrics.json         written last: its presence means the run finished
"""

from __future__ import annotations

import platform
import resource
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from loralab.atomic import atomic_write_json, atomic_write_text
from loralab.config import Config, dump_config
from loralab.errors import UserError
from loralab.models.adapter_io import adapter_folder_name, save_adapter
from loralab.training.selection import trainable_name

if TYPE_CHECKING:
    from loralab.training.recipe import TrainingRecipe

METRICS_FILE = "metrics.json"


class RunFolder:
    def __init__(self, path: Path, *, overwrite: bool = False) -> None:
        self.path = path
        if (path / METRICS_FILE).exists() and not overwrite:
            raise UserError(f"{path} already holds a finished run ({METRICS_FILE}); choose "
                            "another --output or pass --overwrite")

    @property
    def diagnostics_path(self) -> Path:
        return self.path / "diagnostics.jsonl"

    def start(self, config: Config) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / METRICS_FILE).unlink(missing_ok=True)
        atomic_write_text(self.path / "config.yaml", dump_config(config))

    def save_adapter(self, model, built, config: Config, labels: list[str] | None) -> Path:
        name = adapter_folder_name(config, built.model_type)
        return save_adapter(model, built.tokenizer, config, labels, built.model_type,
                            self.path / name)

    def write_metrics(self, recipe: TrainingRecipe, *, final: dict, test: dict | None,
                      adapter: Path) -> dict[str, Any]:
        tracker = recipe.tracker
        trainable = sum(p.numel() for n, p in recipe.model.named_parameters()
                        if trainable_name(n))
        total = sum(p.numel() for n, p in recipe.model.named_parameters()
                    if "modules_to_save" not in n)
        metrics = {
            "name": recipe.config.run_name,
            "task": recipe.config.model.task,
            "model": recipe.config.model.name,
            "adapter": adapter.name,
            "metric_for_best": tracker.metric,
            "best_step": tracker.best_step,
            "best_epoch": tracker.best_epoch,
            "saved": recipe.cfg.save_strategy,
            "final": final,
            "best": tracker.best,
            "test": test,
            "trivial_baseline": recipe.task.baseline_metrics(recipe.features["validation"],
                                                             recipe.labels),
            "epochs": recipe.epochs_run,
            "steps": recipe.step,
            "train_seconds": round(recipe.train_seconds, 3),
            "epoch_seconds": recipe.epoch_seconds,
            "train_samples_per_second": round(recipe.samples_seen
                                              / max(recipe.train_seconds, 1e-9), 3),
            "train_samples": len(recipe.features["train"]),
            "eval_samples": len(recipe.features["validation"]),
            "trainable_parameters": trainable,
            "total_parameters": total,
            "peak_memory_mb": peak_memory_mb(),
            "target_modules": len(recipe.built.target_modules),
            "modules_to_save": recipe.built.modules_to_save,
            "notes": recipe.built.notes,
            "versions": library_versions(),
        }
        atomic_write_json(self.path / METRICS_FILE, metrics)
        return metrics


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return round(rss_kb / 1024, 1)


def library_versions() -> dict[str, str]:
    import accelerate
    import datasets
    import peft
    import transformers

    import loralab

    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "loralab": loralab.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__,
            "accelerate": accelerate.__version__, "datasets": datasets.__version__}
