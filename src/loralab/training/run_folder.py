"""The run folder a training run leaves behind, readable by a person:

    DIR/config.yaml          the resolved config (written first)
    DIR/diagnostics.jsonl    per-step training diagnostics and per-evaluation metrics
    DIR/lora_{name}_{arch}_r{rank}/   the chosen adapter (PEFT folder + tokenizer + labels)
    DIR/metrics.json         written last: its presence means the run finished (or, with
                             "status": "diverged", that it stopped on a non-finite loss and
                             can be resumed from its checkpoint)
    DIR/.lock, .lock.owner   held by the one process writing the folder (loralab.training.run_lock)
"""

from __future__ import annotations

import json
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
from loralab.errors import TrainingDiverged, UserError
from loralab.models.adapter_io import adapter_folder_name, save_adapter
from loralab.models.architectures import split_layer_name
from loralab.training.checkpoint import checkpoint_path, load_checkpoint
from loralab.training.divergence import diverged_metrics, is_diverged
from loralab.training.run_lock import (
    OWNER_FILE,
    RunFolderBusy,
    busy_message,
    hold_run_lock,
    is_locked,
    staging_dir,
)

METRICS_FILE = "metrics.json"
# what `--resume` of a diverged run may change (TrainState.load_state_dict applies new rates)
RESUME_CHANGES = {"training.learning_rate", "training.head_learning_rate",
                  "training.unfreeze_learning_rate", "training.max_grad_norm"}


class RunFolder:
    def __init__(self, path: Path, *, overwrite: bool = False) -> None:
        """Checks only, nothing is written: `writing()` creates the folder."""
        self.path = path
        check_writable_dir(path)
        if finished(path) and not overwrite:
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
        if not finished(final):
            with hold_run_lock(final):
                if finished(final):
                    raise RunFolderBusy(f"{final} was finished by another process meanwhile")
                yield
                return
        with hold_run_lock(final, owner_file=False):  # the finished folder stays as it is
            staging = staging_dir(final)
            for leftover in (staging, retired_dir(final)):  # of a killed earlier overwrite
                shutil.rmtree(leftover, ignore_errors=True)
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
        (self.path / METRICS_FILE).unlink(missing_ok=True)  # a diverged run's, resumed now
        atomic_write_text(self.path / "config.yaml", dump_config(config))

    @contextmanager
    def stops_on_divergence(self, config: Config, state: Any, *,
                            enabled: bool = True) -> Iterator[None]:
        """A TrainingDiverged raised inside is recorded in metrics.json ("status":
        "diverged", no adapter) and raised again; the checkpoint is kept for --resume."""
        try:
            yield
        except TrainingDiverged as exc:
            if enabled:
                kept = checkpoint_path(self.path)
                self.write_metrics(diverged_metrics(
                    config, exc, epoch=state.epoch,
                    checkpoint=str(kept.relative_to(self.path)) if kept.is_file() else None))
            raise

    def checkpoint_for(self, config: Config) -> dict[str, Any] | None:
        """The folder's checkpoint, if any, after checking it was made with this config."""
        state = load_checkpoint(self.path)
        if state is None:
            return None
        stored = self.path / "config.yaml"
        if stored.is_file() and stored.read_text(encoding="utf-8") != dump_config(config):
            if not (diverged(self.path) and changes_after_divergence(stored, config)):
                raise UserError(f"{self.path} holds a checkpoint of a run with a different "
                                "config; train into another --output, or delete its "
                                "checkpoint/ folder")
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


def finished(run_dir: Path) -> bool:
    """The folder holds a finished run: a metrics.json that is not a diverged run's."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return False
    try:
        return not is_diverged(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return True   # unreadable: treated as finished, never overwritten without asking


def diverged(run_dir: Path) -> bool:
    """The folder holds a run that stopped on a non-finite loss (loralab.training.divergence)."""
    try:
        return is_diverged(json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return False


def changes_after_divergence(stored: Path, config: Config) -> bool:
    """Whether `config` differs from the stored one only in the keys a diverged run may change
    when it resumes (its learning rates and clipping); the optimizer takes the new rates."""
    from loralab.config import flatten, parse_yaml

    before = flatten(parse_yaml(stored.read_text(encoding="utf-8")) or {})
    after = flatten(config.model_dump(mode="json"))
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return changed <= RESUME_CHANGES


def retired_dir(run_dir: Path) -> Path:
    return run_dir.parent / f".{run_dir.name}.old"


def swap_in(new: Path, old: Path) -> None:
    """Replace the folder `old` by `new`, then remove the old run. One atomic exchange of the
    two names where the system has it (Linux renameat2), so a kill at any moment leaves `old`
    holding either run, whole; else two renames."""
    (new / OWNER_FILE).unlink(missing_ok=True)
    if exchange(new, old):
        shutil.rmtree(new, ignore_errors=True)   # `new` now names the old run
        return
    retired = retired_dir(old)
    shutil.rmtree(retired, ignore_errors=True)
    os.replace(old, retired)
    os.replace(new, old)
    shutil.rmtree(retired, ignore_errors=True)


def exchange(a: Path, b: Path) -> bool:
    """Swap the names of two folders atomically (renameat2 RENAME_EXCHANGE); False where the
    system or file system cannot."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return done == 0


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
