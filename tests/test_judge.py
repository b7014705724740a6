"""The LLM judge client against a real local HTTP endpoint (tests/judge_stub_app.py, a test
double that returns fixed replies) through the real openai package."""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from judge_stub_app import API_KEY, MODEL, create_app, running  # noqa: E402

from loralab.errors import ConfigError, UserError  # noqa: E402
from loralab.evaluation.judge import (  # noqa: E402
    JudgeConfig,
    judge_answers,
    judge_config,
    parse_score,
)

KEY_ENV = "LORALAB_TEST_JUDGE_KEY"


@pytest.fixture(scope="module")
def stub():
    app = create_app()
    with running(app) as base_url:
        yield base_url, app


@pytest.fixture
def config(stub, monkeypatch) -> JudgeConfig:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    return JudgeConfig(base_url=stub[0], model=MODEL, api_key_env=KEY_ENV, max_retries=0,
                       timeout_seconds=10)


def example(answer: str, reference: str = "42") -> dict:
    return {"prompt": "What is six times seven?", "answer": answer, "reference": reference}


def test_scores_mean_and_per_example_details(config, stub):
    app = stub[1]
    before = len(app.state.requests)
    result = judge_answers(config, [example("[[good]] 42"), example("[[okay]] 41"),
                                    example("[[json]] 7"), example("plain 40")])
    assert [d["score"] for d in result.details] == [9.0, 6.0, 3.0, 5.0]
    assert result.metrics == {"judge_score": 5.75, "judge_failures": 0}
    assert all(d["error"] is None for d in result.details)
    sent = app.state.requests[before:]
    assert len(sent) == 4 and all(body["model"] == MODEL for body in sent)
    prompt = sent[0]["messages"][-1]["content"]
    assert "What is six times seven?" in prompt and "[[good]] 42" in prompt and "42" in prompt
    assert sent[0]["temperature"] == 0.0


def test_unscored_replies_and_server_errors_count_as_failures(config):
    result = judge_answers(config, [example("[[unsure]]"), example("[[huge]]"),
                                    example("[[error]]"), example("[[good]]")])
    assert [d["score"] for d in result.details] == [None, None, None, 9.0]
    assert result.metrics == {"judge_score": 9.0, "judge_failures": 3}
    assert "no score" in result.details[0]["error"]
    assert result.details[2]["error"].startswith("HTTP 500")


def test_all_unscored_gives_no_mean(config):
    result = judge_answers(config, [example("[[unsure]]")])
    assert result.metrics == {"judge_score": None, "judge_failures": 1}


def test_missing_api_key_env_is_a_user_error(stub, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    config = JudgeConfig(base_url=stub[0], model=MODEL, api_key_env=KEY_ENV)
    with pytest.raises(UserError, match=f"judge.api_key_env: .*{KEY_ENV} is not set"):
        judge_answers(config, [example("x")])


def test_wrong_key_unknown_model_and_unreachable_endpoint(stub, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "wrong")
    wrong_key = JudgeConfig(base_url=stub[0], model=MODEL, api_key_env=KEY_ENV, max_retries=0)
    with pytest.raises(UserError, match="refused the API key .*HTTP 401"):
        judge_answers(wrong_key, [example("x")])
    monkeypatch.setenv(KEY_ENV, API_KEY)
    wrong_model = JudgeConfig(base_url=stub[0], model="gpt-nope", api_key_env=KEY_ENV,
                              max_retries=0)
    with pytest.raises(UserError, match="'gpt-nope' \\(HTTP 404\\)"):
        judge_answers(wrong_model, [example("x")])
    with socket.socket() as sock:          # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = JudgeConfig(base_url=f"http://127.0.0.1:{port}/v1", model=MODEL, api_key_env=None,
                       max_retries=0, timeout_seconds=5)
    with pytest.raises(UserError, match=f"judge endpoint http://127.0.0.1:{port}/v1 is "
                                        "unreachable"):
        judge_answers(down, [example("x")])


@pytest.mark.parametrize(("reply", "score"), [
    ("Score: 8", 8.0), ("**Score:** 7", 7.0), ("Score: **10**", 10.0), ("score = 4", 4.0),
    ("Reasoning mentions 3 bugs.\nScore: 6", 6.0), ("I'd give it 7 out of 10.", 7.0),
    ("7/10", 7.0), ("9", 9.0), ("  **5**. ", 5.0), ('{"score": 2}', 2.0),
    ("Score: 6.5", 6.5), ("Score: 0", None), ("Score: 42", None), ("no idea", None),
    ("", None), ("between 6 and 8", None),
])
def test_parse_score(reply, score):
    assert parse_score(reply) == score


def test_config_section_errors_name_the_key():
    with pytest.raises(ConfigError, match="judge.model: Field required"):
        judge_config({"base_url": "http://x/v1"})
    with pytest.raises(ConfigError, match="judge.temprature: Extra inputs"):
        judge_config({"base_url": "http://x/v1", "model": "m", "temprature": 0})
    with pytest.raises(ConfigError, match="judge.template: use the placeholders"):
        judge_config({"base_url": "http://x/v1", "model": "m", "template": "rate {answr}"})
    ok = judge_config({"base_url": "http://x/v1", "model": "m", "api_key_env": None})
    assert ok.api_key_env is None and ok.max_retries == 2
