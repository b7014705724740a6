"""The run folder a training run leaves behind, readable by a person:

    DIR/config.yaml          the resolved config (written first)
    DIR/diagnostics.jsonl    per-step training diagnostics and per-evaluation metrics
    DIR/lora_{name}_{arch}_r{rank}/   the chosen adapter (PEFT folder + tokenizer + labels)
    DIR/metrics.json         written last: its presence means the run finished
    DIR/.lock, .lock.owner   held by the one process writing the folder (loralab.training.run_lock)
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from loralab.atomic import atomic_write_json, atomic_write_text, check_writable_dir
from loralab.config import Config, dump_config
from loralab.errors import UserError
from loralab.models.adapter_io import adapter_folder_name, save_adapter
from loralab.models.architectures import split_layer_name
from loralab.training.checkpoint import load_checkpoint
from loralab.training.run_lock import (
    OWNER_FILE,
    RunFolderBusy,
    busy_message,
    hold_run_lock,
    is_locked,
)

METRICS_FILE = "metrics.json"


class RunFolder:
    def __init__(self, path: Path, *, overwrite: bool = False) -> None:
        """Checks only, nothing is written: `writing()` creates the folder."""
        self.path = path
        check_writable_dir(path)
        if (path / METRICS_FILE).exists() and not overwrite:
            raise UserError(f"{path} already holds a finished run ({METRICS_FILE}); choose "
                            "another --output or pass --overwrite")
        if is_locked(path):
            raise RunFolderBusy(busy_message(path))

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the folder's lock while the run writes it. Over a finished run (--overwrite)
        the new run is written beside it and swapped in only once it has finished, so a
        failure leaves the old run as it was."""
        final = self.path
        with hold_run_lock(final):
            if not (final / METRICS_FILE).is_file():
                yield
                return
            staging = final.parent / f".{final.name}.new"
            shutil.rmtree(staging, ignore_errors=True)  # left by a killed earlier overwrite
            with hold_run_lock(staging):
                self.path = staging
                try:
                    yield
                except BaseException:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
                finally:
                    self.path = final
                swap_in(staging, final)

    @property
    def diagnostics_path(self) -> Path:
        return self.path / "diagnostics.jsonl"

    def start(self, config: Config) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path / "config.yaml", dump_config(config))

    def checkpoint_for(self, config: Config) -> dict[str, Any] | None:
        """The folder's checkpoint, if any, after checking it was made with this config."""
        state = load_checkpoint(self.path)
        if state is None:
            return None
        stored = self.path / "config.yaml"
        if stored.is_file() and stored.read_text(encoding="utf-8") != dump_config(config):
            raise UserError(f"{self.path} holds a checkpoint of a run with a different config; "
                            "train into another --output, or delete its checkpoint/ folder")
        return state

    def save_adapter(self, model, built, config: Config, labels: list[str] | None,
                     inputs: list[str] | None = None, adapter_name: str | None = None) -> Path:
        name = adapter_folder_name(config, built.model_type)
        return save_adapter(model, built.tokenizer, config, labels, built.model_type,
                            self.path / name, inputs, adapter_name)

    def write_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """metrics.json, last and atomically: its presence means the run finished."""
        atomic_write_json(self.path / METRICS_FILE, metrics)
        return metrics


def swap_in(new: Path, old: Path) -> None:
    """Replace the folder `old` by `new` (two renames; the old one is removed after)."""
    (new / OWNER_FILE).unlink(missing_ok=True)
    retired = old.parent / f".{old.name}.old"
    shutil.rmtree(retired, ignore_errors=True)
    os.replace(old, retired)
    os.replace(new, old)
    shutil.rmtree(retired, ignore_errors=True)


def adapted_layer_count(target_modules: list[str]) -> int:
    """How many numbered layers carry LoRA (0 for the no-LoRA baseline)."""
    return len({parts[:2] for name in target_modules if (parts := split_layer_name(name))})


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
