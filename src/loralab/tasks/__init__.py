"""Task types behind one interface (loralab.tasks.base.Task), and adapter folders loaded for
inference through the task they belong to (loralab.tasks.loading)."""

from __future__ import annotations

from loralab.tasks.base import Task
from loralab.tasks.inputs import check_prediction_inputs
from loralab.tasks.loading import (
    AdapterSet,
    LoadedAdapter,
    adapter_set_folders,
    load_adapter,
    load_adapter_set,
    load_base,
    read_adapter_metadata,
    serving_base_config,
)
from loralab.tasks.task_registry import TASKS, get_task

__all__ = ["TASKS", "AdapterSet", "LoadedAdapter", "Task", "adapter_set_folders",
           "check_prediction_inputs", "get_task", "load_adapter", "load_adapter_set",
           "load_base", "read_adapter_metadata", "serving_base_config"]
