"""Task types, looked up by the `model.task` name."""

from __future__ import annotations

from loralab.tasks.base import Task
from loralab.tasks.sequence import RegressionTask, SequenceClassificationTask
from loralab.tasks.token import TokenClassificationTask

TASKS: dict[str, type[Task]] = {
    "sequence_classification": SequenceClassificationTask,
    "regression": RegressionTask,
    "token_classification": TokenClassificationTask,
}


def get_task(name: str) -> Task:
    return TASKS[name]()


__all__ = ["Task", "get_task", "TASKS"]
