"""The optional LLM judge in `loralab eval` (the benchmark stage's `judge:` section), against
tests/judge_stub_app.py: a TEST DOUBLE, a local OpenAI-compatible server on 127.0.0.1 that
returns fixed scores, started by the test on a free port and always shut down."""

from __future__ import annotations

import json

import pytest
from pipeline_helpers import write_mbpp, write_yaml

from loralab.cli import main

pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from judge_stub_app import API_KEY, MODEL, create_app, running  # noqa: E402

KEY_ENV = "LORALAB_TEST_JUDGE_KEY"


def base_config(tmp_path, model_dir, judge: dict) -> str:
    raw = {"model": {"name": str(model_dir), "task": "causal_lm", "max_length": 96},
           "data": {"train": str(write_mbpp(tmp_path / "mbpp.jsonl")), "format": "mbpp",
                    "prompt_template": "{code}\nDoc: ", "response_template": "{text}",
                    "metrics": ["text"], "max_eval_samples": 3},
           "eval": {"max_new_tokens": 8}, "judge": judge}
    return str(write_yaml(tmp_path / "judged.yaml", raw))


def test_eval_scores_answers_with_the_judge(tiny_llama, tmp_path, monkeypatch, capsys):
    app = create_app()
    monkeypatch.setenv(KEY_ENV, API_KEY)
    with running(app) as base_url:
        config = base_config(tmp_path, tiny_llama, {"base_url": base_url, "model": MODEL,
                                                    "api_key_env": KEY_ENV, "max_retries": 0})
        assert main(["eval", "--model", str(tiny_llama), "--config", config, "--split", "test",
                     "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "out" / "base_results.json").read_text())
    assert result["judge_score"] == 5.0 and result["judge_failures"] == 0  # the stub's default
    assert "bleu" in result and "rougeL" in result
    lines = [json.loads(x) for x in (tmp_path / "out" / "base_generations.jsonl")
             .read_text().splitlines()]
    assert len(lines) == 3 and all(line["judge"]["score"] == 5.0 for line in lines)
    assert len(app.state.requests) == 3
    sent = app.state.requests[0]["messages"][-1]["content"]
    assert lines[0]["generated"] in sent and lines[0]["gold"] in sent


def test_a_missing_judge_key_is_refused_before_anything_runs(tiny_llama, tmp_path,
                                                             monkeypatch, capsys):
    monkeypatch.delenv(KEY_ENV, raising=False)
    config = base_config(tmp_path, tiny_llama, {"base_url": "http://127.0.0.1:9/v1",
                                                "model": MODEL, "api_key_env": KEY_ENV})
    assert main(["eval", "--model", str(tiny_llama), "--config", config, "--split", "test",
                 "--output", str(tmp_path / "out"), "--no-progress"]) == 2
    assert f"{KEY_ENV} is not set" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
