"""The gate reads every loralab results shape as flat `scope.metric` names."""

from __future__ import annotations

import pytest
from gate_helpers import (
    BASE_RESULTS,
    GRID_BEST,
    LORA_RESULTS,
    RUN_METRICS,
    TOKEN_RUN,
    bench,
    write_json,
)

from loralab.evaluation.gate.check import check_rules
from loralab.evaluation.gate.results import load_results
from loralab.evaluation.gate.rules import parse_rule


def test_run_folder_metrics_json(tmp_path):
    res = load_results(write_json(tmp_path / "run" / "metrics.json", RUN_METRICS).parent)
    assert res.shape == "run"
    m = res.metrics
    assert m["validation.f1_binary"] == 0.85 and m["final.f1_binary"] == 0.84
    assert m["test.accuracy"] == 0.78 and m["base.validation.accuracy"] == 0.68
    assert m["run.train_seconds"] == 12.5 and m["run.peak_memory_mb"] == 812.0
    assert "run.epoch_seconds" not in m and "run.baseline" not in m      # lists, booleans
    token = load_results(write_json(tmp_path / "tok.json", TOKEN_RUN)).metrics
    assert token["validation.f1_per_type/PERSON"] == 0.8
    assert not any(k.startswith("test.") for k in token)


def test_eval_folder_with_the_base_model_beside(tmp_path):
    write_json(tmp_path / "eval" / "lora_results.json", LORA_RESULTS)
    write_json(tmp_path / "eval" / "baseline_results.json", BASE_RESULTS)
    res = load_results(tmp_path / "eval")
    assert res.shape == "eval" and [p.name for p in res.files] == ["lora_results.json",
                                                                   "baseline_results.json"]
    assert res.metrics["validation.pass@1"] == 0.30
    assert res.metrics["base.validation.pass@1"] == 0.12
    assert res.metrics["base.validation.perplexity"] == 4.05
    assert not any("max_new_tokens" in k for k in res.metrics)
    outcome, = check_rules([parse_rule("validation.perplexity <= base - 1")], res, None)
    assert (outcome.status, outcome.reference, outcome.needed) == ("pass", 4.05,
                                                                   pytest.approx(3.05))
    encoder = load_results(write_json(tmp_path / "enc" / "eval_metrics.json", {
        "adapter": "/a", "split": "test", "examples": 20, "entity_f1": 0.7, "loss": 0.3}))
    assert encoder.metrics == {"test.examples": 20.0, "test.entity_f1": 0.7, "test.loss": 0.3}


def test_grid_best_json(tmp_path):
    res = load_results(write_json(tmp_path / "grid" / "best.json", GRID_BEST))
    assert res.shape == "grid"
    assert res.metrics == {"minilm/mrpc.f1_binary": 0.86, "base.minilm/mrpc.f1_binary": 0.80,
                           "Qwen2.5-0.5B/stsb.pearson": 0.85}
    outcome, = check_rules([parse_rule("minilm/mrpc.f1 >= base + 0.05")], res, None)
    assert (outcome.metric, outcome.status) == ("minilm/mrpc.f1_binary", "pass")


def test_flat_benchmark_json(tmp_path):
    res = load_results(write_json(tmp_path / "bench.json", bench()))
    assert res.shape == "flat"
    assert res.metrics == {"code.pass@1": 0.34, "code.code_failures": 12.0,
                           "docstring.rougeL": 0.41, "docstring.bleu": 18.5,
                           "validation.perplexity": 8.5, "validation.loss": 2.14,
                           "base.code.pass@1": 0.20, "base.docstring.rougeL": 0.30}


def test_scoped_names_split_at_the_last_dot_and_resolve_aliases_in_their_scope():
    from loralab.errors import ConfigError
    from loralab.metrics.metric_registry import resolve_scoped_metric, split_scoped_name

    assert split_scoped_name("base.code.pass@1") == ("base.code", "pass@1")
    assert split_scoped_name("Qwen2.5-0.5B/stsb.pearson") == ("Qwen2.5-0.5B/stsb", "pearson")
    assert split_scoped_name("loss") == ("", "loss")
    names = ["validation.f1_binary", "test.f1_macro", "validation.eval_loss", "loss"]
    assert resolve_scoped_metric("validation.f1", names) == "validation.f1_binary"
    assert resolve_scoped_metric("test.f1", names) == "test.f1_macro"
    assert resolve_scoped_metric("loss", names) == "loss"
    with pytest.raises(ConfigError, match="'final.f1' is not in these results; they hold: "
                                          "validation.f1_binary, test.f1_macro"):
        resolve_scoped_metric("final.f1", names)
