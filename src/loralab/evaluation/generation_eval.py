"""Generate answers for records and score them with the dataset's metric suites (data.metrics).

The gold side of each suite comes from the record: `json` the gold object (`output`, else the
response parsed as JSON), `qa` the `answers` list (else the response), `multiple_choice` the
record's `answer`/`options`/`category`, `code` MBPP's `test_list`/`test_setup_code`, `text`
the response text.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from loralab.config import Config
from loralab.evaluation.generation import evaluate_generation
from loralab.models.grammar import load_schema_file
from loralab.tasks import Task
from loralab.tasks.labels import row_error


def gold_json(record: dict[str, Any], task: Task) -> Any:
    if "output" in record:
        return record["output"]
    response = task.gold_text(record)
    try:
        return json.loads(response or "")
    except json.JSONDecodeError:
        raise row_error(record, "response", "the json metrics need a gold JSON object: an "
                                            "'output' field or a response that is JSON") from None


def reference(suite: str, record: dict[str, Any], task: Task) -> dict[str, Any]:
    if suite == "json":
        return {"output": gold_json(record, task)}
    if suite == "qa":
        answers = record.get("answers")
        return {"answers": list(answers) if answers else [task.gold_text(record) or ""]}
    if suite == "multiple_choice":
        if "answer" not in record or "options" not in record:
            raise row_error(record, "answer", "the multiple_choice metrics need 'answer' and "
                                              "'options' fields")
        return {"answer": record["answer"], "options": record["options"],
                "category": record.get("category")}
    if suite == "code":
        if "test_list" not in record:
            raise row_error(record, "test_list", "the code metrics need a 'test_list' of "
                                                 "assert statements (MBPP's field)")
        return {k: record[k] for k in ("test_list", "test_setup_code", "test_imports")
                if k in record}
    return {"reference": task.gold_text(record) or ""}


def suite_options(suite: str, config: Config) -> dict[str, Any]:
    if suite == "json" and config.data.schema_file:
        return {"schema": load_schema_file(config.data.schema_file)}
    if suite == "code":
        return {"timeout_s": config.eval.code_timeout}
    return {}


def generation_metrics(model: torch.nn.Module, tokenizer: Any, task: Task,
                       records: list[dict[str, Any]], config: Config, *,
                       progress: bool = False,
                       desc: str = "generate") -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(metrics of every suite in data.metrics, per-example prompt / generated / gold).

    `truncated` counts the answers that max_new_tokens cut off (with eval.constrain: those
    whose document was not complete yet); such an answer is scored as it is, an invalid one.
    """
    prompts, generations = task.answer(model, tokenizer, records, config, progress=progress,
                                       desc=desc)
    texts = [g.text for g in generations]
    truncated = sum(g.finish == "length" and g.complete is not True for g in generations)
    metrics: dict[str, float] = {"generated": float(len(texts)), "truncated": float(truncated)}
    details = [{"_src": r.get("_src"), "prompt": p, "generated": g.text, "finish": g.finish,
                **({} if g.complete is None else {"complete": g.complete}),
                "gold": task.gold_text(r)}
               for r, p, g in zip(records, prompts, generations)]
    for suite in config.data.metrics:
        refs = [reference(suite, r, task) for r in records]
        result = evaluate_generation(suite, texts, refs, **suite_options(suite, config))
        metrics.update({k: v for k, v in result.metrics.items() if k != "n"})
        for line, detail in zip(details, result.details):
            line[suite] = detail
    return metrics, details
