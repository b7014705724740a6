"""The one registry of metric directions, and the consumers that must agree with it: best-
checkpoint selection, the grid report (`loralab compare`) and the results index."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from loralab.config import TrainingConfig
from loralab.errors import ConfigError
from loralab.experiments.index import connect, index_path, query, upsert
from loralab.experiments.records import FINISHED, RunRecord
from loralab.experiments.report_ranking import build_groups
from loralab.metrics.metric_registry import (
    find_metric,
    greater_is_better,
    metric_info,
    metrics_of,
    resolve_metric,
)
from loralab.training.selection import BestTracker


@pytest.mark.parametrize("name, higher", [
    ("perplexity", False), ("loss", False), ("mse", False), ("code_failures", False),
    ("f1_binary", True), ("entity_f1", True), ("qa_f1", True), ("pass@1", True),
    ("rougeL", True), ("mc_accuracy/physics", True), ("eval_loss", False), ("f1", True),
])
def test_every_consumer_reads_one_direction(name, higher):
    assert greater_is_better(name) is higher


def test_counts_and_unknown_names_cannot_rank():
    with pytest.raises(ConfigError, match="count, not a score"):
        greater_is_better("response_tokens")
    with pytest.raises(ConfigError, match="unknown metric 'f2'"):
        metric_info("f2")


def test_aliases_resolve_to_the_name_the_results_carry():
    assert resolve_metric("f1", ["accuracy", "f1_binary", "mcc"]) == "f1_binary"
    assert resolve_metric("f1", ["accuracy", "f1_macro", "f1_micro"]) == "f1_macro"
    assert resolve_metric("f1", ["entity_f1", "entity_recall"]) == "entity_f1"
    assert resolve_metric("f1", ["exact_match", "qa_f1", "loss"]) == "qa_f1"
    assert resolve_metric("eval_loss", ["loss"]) == "loss"
    assert find_metric("pearson", ["accuracy"]) is None
    with pytest.raises(ConfigError, match="training.metric_for_best: 'pearson' is not a metric"
                                          ".*accuracy, loss"):
        resolve_metric("pearson", ["accuracy", "loss", "response_tokens"],
                       key="training.metric_for_best")


def test_names_are_unambiguous_across_tasks():
    seq, tok = set(metrics_of("sequence_classification")), set(metrics_of("token_classification"))
    qa = set(metrics_of("suite:qa"))
    assert "f1" not in seq | tok | qa
    assert {"f1_binary", "f1_macro"} <= seq and "entity_f1" in tok and "qa_f1" in qa
    assert not (seq - {"loss"}) & (tok - {"loss"})


def test_metric_for_best_perplexity_keeps_the_lowest_perplexity():
    model = torch.nn.Linear(2, 1)
    tracker = BestTracker(model, TrainingConfig(metric_for_best="perplexity"), "loss")
    for step, perplexity in enumerate([9.0, 4.0, 6.0], start=1):
        with torch.no_grad():
            model.weight.fill_(float(step))
        tracker.update({"loss": 1.0, "perplexity": perplexity}, step, float(step))
    assert tracker.best_step == 2 and tracker.best["perplexity"] == 4.0
    tracker.restore_best()
    assert float(model.weight.detach()[0, 0]) == 2.0


def test_metric_for_best_alias_resolves_and_a_wrong_name_lists_the_metrics():
    tracker = BestTracker(torch.nn.Linear(1, 1), TrainingConfig(metric_for_best="f1"), "loss")
    tracker.update({"accuracy": 0.8, "f1_binary": 0.7, "loss": 0.5}, 1, 1.0)
    assert tracker.metric == "f1_binary"
    wrong = BestTracker(torch.nn.Linear(1, 1), TrainingConfig(metric_for_best="pearson"), "loss")
    with pytest.raises(ConfigError, match="one of: accuracy, f1_binary, loss"):
        wrong.update({"accuracy": 0.8, "f1_binary": 0.7, "loss": 0.5}, 1, 1.0)


def causal_run(root: Path, name: str, perplexity: float) -> RunRecord:
    metrics = {"metric_for_best": "perplexity", "saved": "best", "final": {},
               "best": {"loss": perplexity / 10, "perplexity": perplexity},
               "train_seconds": 1.0, "trainable_parameters": 100}
    return RunRecord(id=name, name=f"{name}-s0", status=FINISHED, path=root / name,
                     model="smollm2", dataset="xquad", seed=0, baseline=False, variant=name,
                     params={"lora.r": 8}, config={"lora": {"r": 8}}, metrics=metrics)


def test_compare_ranks_the_lowest_perplexity_first(tmp_path):
    runs = [causal_run(tmp_path, "worse", 12.0), causal_run(tmp_path, "better", 3.0),
            causal_run(tmp_path, "middle", 7.0)]
    (group,) = build_groups(runs, "perplexity", ("model", "dataset"))
    assert [c.variant for c in group.configs] == ["better", "middle", "worse"]
    assert group.best["variant"] == "better" and group.best["greater_is_better"] is False


def test_runs_list_sorts_perplexity_best_first(tmp_path):
    with connect(index_path(tmp_path)) as db:
        for name, value in (("worse", 12.0), ("better", 3.0), ("middle", 7.0)):
            upsert(db, causal_run(tmp_path, name, value))
    rows = query(tmp_path, sort="perplexity")
    assert [row["id"] for row in rows] == ["better", "middle", "worse"]


def test_runs_list_sort_by_an_alias_finds_the_specific_name(tmp_path):
    with connect(index_path(tmp_path)) as db:
        for name, value in (("low", 0.6), ("high", 0.9)):
            run = causal_run(tmp_path, name, 1.0)
            run.metrics["best"] = {"f1_binary": value, "loss": 0.5}
            upsert(db, run)
    assert [row["id"] for row in query(tmp_path, sort="f1")] == ["high", "low"]
    assert [row["id"] for row in query(tmp_path, where=["f1>0.7"])] == ["high"]
