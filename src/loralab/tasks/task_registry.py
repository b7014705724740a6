"""Task types, looked up by the `model.task` name."""

from __future__ import annotations

from loralab.config import Config
from loralab.tasks.base import Task
from loralab.tasks.causal import CausalLMTask
from loralab.tasks.sequence import RegressionTask, SequenceClassificationTask
from loralab.tasks.token import TokenClassificationTask

TASKS: dict[str, type[Task]] = {
    "sequence_classification": SequenceClassificationTask,
    "regression": RegressionTask,
    "token_classification": TokenClassificationTask,
    "causal_lm": CausalLMTask,
}


def get_task(name: str, config: Config | None = None) -> Task:
    """A task object; `config` tells the tasks that need it (causal_lm: prompt formats, loss
    terms) how to encode and score."""
    task = TASKS[name]()
    if config is not None:
        task.configure(config)
    return task
