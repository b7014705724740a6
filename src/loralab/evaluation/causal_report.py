"""`loralab eval` for causal LMs: loss + generation metrics, and base vs adapter side by side.

    DIR/lora_results.json       metrics of the adapter (or results.json for a base model alone)
    DIR/baseline_results.json   the base model (adapter switched off) on the same examples,
                                with the same decoding
    DIR/comparison.md           one table: metric | base | LoRA | delta
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
from loralab.metrics.registry import higher_is_better
from loralab.tasks import Task


def evaluate_causal(model: torch.nn.Module, tokenizer: Any, task: Task,
                    records: list[dict[str, Any]], config: Config, *, progress: bool,
                    desc: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Response-token loss / perplexity on the labelled records, then the metric suites."""
    started = time.perf_counter()
    metrics: dict[str, Any] = {}
    labelled = [r for r in records if task.has_gold(r)]
    if labelled:
        features = task.encode(labelled, tokenizer, None, config.model.max_length)
        metrics.update(evaluate(model, task, features, None, tokenizer,
                                config.training.eval_batch_size, progress=progress,
                                desc=f"{desc} loss"))
    details: list[dict[str, Any]] = []
    if config.data.metrics:
        generated, details = generation_metrics(model, tokenizer, task.format, records, config,
                                                progress=progress, desc=f"{desc} generate")
        metrics.update(generated)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    return metrics, details


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


def run_causal_eval(model: torch.nn.Module, tokenizer: Any, task: Task,
                    records: list[dict[str, Any]], config: Config, *, baseline: bool,
                    has_adapter: bool, output: Path | None, progress: bool,
                    source: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the adapter (and with `baseline` the base model, adapter off); write files."""
    common = {**source, "examples": len(records), "decoding": config.eval.model_dump()}
    label = "lora" if has_adapter else "base"
    metrics, details = evaluate_causal(model, tokenizer, task, records, config,
                                       progress=progress, desc=label)
    result = {**common, "model": label, **metrics}
    base_result = None
    if baseline:
        with model.disable_adapter() if has_adapter else nullcontext():
            base_metrics, base_details = evaluate_causal(model, tokenizer, task, records,
                                                         config, progress=progress,
                                                         desc="base")
        base_result = {**common, "model": "base", **base_metrics}
    if output:
        write_causal_files(output, result, details, base_result,
                           base_details if baseline else None, has_adapter)
    return {"lora": result, "baseline": base_result} if baseline else result


def write_causal_files(output: Path, result: dict[str, Any], details: list[dict[str, Any]],
                       base_result: dict[str, Any] | None,
                       base_details: list[dict[str, Any]] | None, has_adapter: bool) -> None:
    name = "lora" if has_adapter else "base"
    atomic_write_json(output / (f"{name}_results.json" if base_result else "results.json"),
                      result)
    write_generations(output / f"{name}_generations.jsonl", details)
    if base_result is not None:
        atomic_write_json(output / "baseline_results.json", base_result)
        write_generations(output / "baseline_generations.jsonl", base_details or [])
        header = (f"# Base model vs LoRA adapter\n\n{result['examples']} examples of split "
                  f"`{result.get('split')}`, the same decoding for both "
                  f"(max_new_tokens={result['decoding']['max_new_tokens']}, "
                  f"{'sampled' if result['decoding']['do_sample'] else 'greedy'}).")
        atomic_write_text(output / "comparison.md",
                          comparison_table(base_result, result, header))
