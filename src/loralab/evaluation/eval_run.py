"""`loralab eval`: an adapter's (or a base model's) metrics on a split, and base vs adapter.

One path for every task: the loss and the task's metrics on the labelled records, then the
generation suites of data.metrics (causal LMs), written as

    DIR/lora_results.json       metrics of the adapter (base_results.json for a base model
                                alone)
    DIR/baseline_results.json   with --baseline: the base model (adapter switched off) on the
                                same examples, with the same decoding
    DIR/comparison.md           with --baseline: metric | base | LoRA | delta
    DIR/*_generations.jsonl     prompt, generated text, gold and per-suite verdicts per example
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from loralab.atomic import atomic_write_json, atomic_write_text
from loralab.config import Config
from loralab.evaluation.evaluate import evaluate
from loralab.evaluation.generation_eval import generation_metrics
from loralab.metrics.metric_registry import higher_is_better
from loralab.tasks import Task


def evaluate_records(model: torch.nn.Module, tokenizer: Any, task: Task,
                     records: list[dict[str, Any]], config: Config, labels: list[str] | None,
                     *, progress: bool, desc: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The loss and the task's metrics on the labelled records, then the generation suites."""
    started = time.perf_counter()
    metrics: dict[str, Any] = {}
    labelled = [r for r in records if task.has_gold(r)]
    if labelled:
        features = task.encode(labelled, tokenizer, labels, config.model.max_length)
        metrics.update(evaluate(model, task, features, labels, tokenizer,
                                config.training.eval_batch_size, progress=progress,
                                desc=f"{desc} loss"))
    details: list[dict[str, Any]] = []
    if config.data.metrics or config.judge is not None:
        generated, details = generation_metrics(model, tokenizer, task, records, config,
                                                progress=progress, desc=f"{desc} generate")
        metrics.update(generated)
    if config.judge is not None:
        metrics.update(judge_generations(config, details, progress=progress))
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    return metrics, details


def judge_generations(config: Config, details: list[dict[str, Any]], *,
                      progress: bool) -> dict[str, Any]:
    """The LLM judge's scores of the generated answers (`judge:` section); each example's
    score, reply and error go into its details under `judge`."""
    from loralab.evaluation.judge import judge_answers

    result = judge_answers(config.judge, [{"prompt": d["prompt"], "answer": d["generated"],
                                           "reference": d["gold"]} for d in details],
                           progress=progress)
    for line, verdict in zip(details, result.details):
        line["judge"] = verdict
    return result.metrics


def write_generations(path: Path, details: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(d, ensure_ascii=False, default=str) + "\n"
                                    for d in details))


def comparison_table(base: dict[str, Any], lora: dict[str, Any], header: str) -> str:
    """Markdown: metric | base | LoRA | delta (LoRA - base) for every shared number."""
    lines = [header, "", "| metric | base model | LoRA adapter | delta |", "|---|---:|---:|---:|"]
    for key, value in base.items():
        other = lora.get(key)
        direction = higher_is_better(key)
        if not isinstance(value, (int, float)) or not isinstance(other, (int, float)) \
                or direction is None:
            continue
        better = " (lower is better)" if direction is False else ""
        lines.append(f"| {key}{better} | {value:.4f} | {other:.4f} | {other - value:+.4f} |")
    return "\n".join(lines) + "\n"


def run_eval(model: torch.nn.Module, tokenizer: Any, task: Task,
             records: list[dict[str, Any]], config: Config, *, labels: list[str] | None,
             baseline: bool, has_adapter: bool, output: Path | None, progress: bool,
             source: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the adapter (and with `baseline` the base model, adapter off); write files."""
    common = {**source, "examples": len(records)}
    if config.data.metrics or config.judge is not None:
        common["decoding"] = config.eval.model_dump()
    label = "lora" if has_adapter else "base"
    metrics, details = evaluate_records(model, tokenizer, task, records, config, labels,
                                        progress=progress, desc=label)
    result = {**common, "model": label, **metrics}
    base_result, base_details = None, None
    if baseline:
        with model.disable_adapter() if has_adapter else nullcontext():
            base_metrics, base_details = evaluate_records(model, tokenizer, task, records,
                                                          config, labels, progress=progress,
                                                          desc="base")
        base_result = {**common, "model": "base", **base_metrics}
    if output:
        write_eval_files(output, result, details, base_result, base_details, has_adapter)
    return {"lora": result, "baseline": base_result} if baseline else result


def write_eval_files(output: Path, result: dict[str, Any], details: list[dict[str, Any]],
                     base_result: dict[str, Any] | None,
                     base_details: list[dict[str, Any]] | None, has_adapter: bool) -> None:
    name = "lora" if has_adapter else "base"
    atomic_write_json(output / f"{name}_results.json", result)
    if details:
        write_generations(output / f"{name}_generations.jsonl", details)
    if base_result is None:
        return
    atomic_write_json(output / "baseline_results.json", base_result)
    if base_details:
        write_generations(output / "baseline_generations.jsonl", base_details)
    decoding = result.get("decoding")
    how = "" if decoding is None else (
        f", the same decoding for both (max_new_tokens={decoding['max_new_tokens']}, "
        f"{'sampled' if decoding['do_sample'] else 'greedy'})")
    header = (f"# Base model vs LoRA adapter\n\n{result['examples']} examples of split "
              f"`{result.get('split')}`{how}.")
    atomic_write_text(output / "comparison.md", comparison_table(base_result, result, header))
