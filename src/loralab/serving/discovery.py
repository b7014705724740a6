"""Find adapter folders under MODELS_DIR and say what each one is.

An adapter folder is any folder with an `adapter_config.json`: loralab's own
`lora_{task}_{arch}_r{rank}/` (with label_mapping.json and loralab_config.yaml) or a plain PEFT
folder (task from its task_type, generic LABEL_i names sized from the saved head). Hidden
folders (atomic-write temporaries) are skipped, and nothing below an adapter folder is
searched. A folder that cannot be read is reported with its error; it never stops the others.

Adapters are named by their folder name, or by their path relative to MODELS_DIR where two
folders share a name. They are grouped by base model and the task's model class (one loaded
base model serves each group).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loralab.config import Config
from loralab.errors import UserError
from loralab.tasks import Task, get_task, read_adapter_metadata

ADAPTER_CONFIG = "adapter_config.json"


@dataclass
class AdapterInfo:
    name: str
    path: Path
    config: Config
    task: Task
    labels: list[str] | None
    pairs: bool | None = None          # trained on text pairs (None: cannot tell)

    @property
    def base(self) -> str:
        return self.config.model.name

    @property
    def group(self) -> tuple[str, str | None, str]:
        """Adapters with the same group share one loaded base model."""
        return (self.base, self.config.model.gguf_file, self.task.auto_model_class)

    @property
    def width(self) -> int:
        """Outputs of the adapter's head: its labels, or one value for regression."""
        return len(self.labels) if self.labels else 1


@dataclass
class Discovery:
    found: list[AdapterInfo] = field(default_factory=list)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)   # name -> path, error


def adapter_folders(root: Path) -> list[Path]:
    """Every adapter folder under `root` (sorted), not descending into adapter folders."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if ADAPTER_CONFIG in files:
            found.append(Path(folder))
            dirs[:] = []
    return sorted(found)


def folder_names(folders: list[Path], root: Path) -> dict[Path, str]:
    counts: dict[str, int] = {}
    for folder in folders:
        counts[folder.name] = counts.get(folder.name, 0) + 1
    return {f: f.name if counts[f.name] == 1 else f.relative_to(root).as_posix()
            for f in folders}


class OutsideModelsDir(UserError):
    """A path (or a file inside an adapter folder) that resolves outside MODELS_DIR."""


def check_confined(folder: Path, root: Path) -> None:
    """Refuse an adapter folder that holds a link (file or folder) resolving outside `root`:
    its files are read only when they are MODELS_DIR's own."""
    top = os.path.realpath(root)
    for here, dirs, files in os.walk(folder, followlinks=False):
        for entry in (*dirs, *files):
            full = os.path.join(here, entry)
            if os.path.islink(full) and os.path.commonpath(
                    [top, os.path.realpath(full)]) != top:
                raise OutsideModelsDir(f"{full} links outside MODELS_DIR "
                                       f"({os.path.realpath(full)})")


def describe(path: Path, name: str, root: Path | None = None) -> AdapterInfo:
    """What an adapter folder holds (raises UserError when it cannot tell); with `root`
    (MODELS_DIR), links inside the folder must stay inside it."""
    from loralab.serving.adapter_weights import read_peft_config

    if root is not None:
        check_confined(path, root)
    read_peft_config(path)                 # readable, and a kind of LoRA this server serves
    from loralab.models.adapter_io import read_adapter_files

    config, task_name, labels = read_adapter_metadata(path)
    task = get_task(task_name, config)
    inputs = read_adapter_files(path).mapping.get("inputs")
    return AdapterInfo(name, path, config, task, labels, trained_on_pairs(config, task, inputs))


def trained_on_pairs(config: Config, task: Task, inputs: list[str] | None = None) -> bool | None:
    """Whether the adapter's training rows had a second text: the task's rule on the input
    fields recorded with the adapter (Task.accepts_pairs: never for word tags or prompts);
    when not recorded, from the config's columns or the first training row (None when the
    training data is not readable here, e.g. on another machine)."""
    from loralab.data import read_file
    from loralab.data.paths import expand_paths

    recorded = task.accepts_pairs(inputs)
    if recorded is not None:
        return recorded
    if config.data.columns.text_pair is not None:
        return True
    if not config.data.train:
        return None
    try:
        path = expand_paths(config.data.train, "data.train")[0]
        if path.stat().st_size > 64 * 1024 * 1024:
            return None
        rows = read_file(path, config.data, task.records, "train")
    except (UserError, OSError, IndexError, ValueError, KeyError):
        return None
    return any(r.get("text_pair") is not None for r in rows[:1]) if rows else None


def discover(root: Path, skip: set[Path] | None = None) -> Discovery:
    """Describe every adapter folder under `root` (except the resolved paths in `skip`)."""
    result = Discovery()
    folders = adapter_folders(root)
    names = folder_names(folders, root)
    for folder in folders:
        if skip and folder.resolve() in skip:
            continue
        try:
            result.found.append(describe(folder, names[folder], root))
        except (UserError, OSError, ValueError) as exc:
            result.failed[names[folder]] = {"path": str(folder), "error": one_line(exc)}
    return result


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
