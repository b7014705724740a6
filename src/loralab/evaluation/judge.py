"""An optional LLM judge: score (prompt, answer, reference) triples from 1 to 10 with a model
behind any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp's server, Ollama,
loralab's own server, OpenAI), through the `openai` package (`pip install 'loralab[judge]'`).

Config section (off unless present):

    judge:
      base_url: http://127.0.0.1:8000/v1
      model: Qwen/Qwen2.5-7B-Instruct
      api_key_env: OPENAI_API_KEY      # the env var holding the key; null: no key needed
      temperature: 0.0
      max_tokens: 64
      timeout_seconds: 60
      max_retries: 2
      template: "...{prompt}...{reference}...{answer}..."   # default: DEFAULT_TEMPLATE

    result = judge_answers(JudgeConfig(...), [{"prompt": p, "answer": a, "reference": r}])
    result.metrics   -> {"judge_score": 6.5, "judge_failures": 0}   (registry names)
    result.details   -> [{"index": 0, "score": 7.0, "reply": "Score: 7", "error": None}, ...]

`judge_score` is the mean over the answers the judge scored; an answer whose reply holds no
score from 1 to 10, or whose request the endpoint answered with an error status, counts in
`judge_failures` (and its detail says why). An unreachable endpoint, a refused key, an
unknown model, and an API key env var that is not set are user errors (exit 2).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from loralab.config.judge import JUDGE_FIELDS as FIELDS
from loralab.config.judge import JUDGE_SYSTEM as DEFAULT_SYSTEM  # noqa: F401 - re-exported
from loralab.config.judge import JUDGE_TEMPLATE as DEFAULT_TEMPLATE  # noqa: F401
from loralab.config.judge import JudgeConfig
from loralab.errors import ConfigError, UserError

LOW, HIGH = 1.0, 10.0


def judge_config(raw: Any) -> JudgeConfig:
    """The `judge:` section; ConfigError naming `judge.<key>`."""
    try:
        return JudgeConfig.model_validate(raw)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            key = ".".join(["judge", *map(str, err["loc"])])
            msg = str(err["msg"]).removeprefix("Value error, ")
            parts.append(msg if msg.startswith("judge.") else f"{key}: {msg}")
        raise ConfigError("; ".join(parts)) from None


@dataclass
class JudgeResult:
    metrics: dict[str, float | int | None]
    details: list[dict[str, Any]]


_JSON = re.compile(r"\{.*\}", re.S)
_LABELLED = re.compile(r"score\W{0,4}(?:is|of|=)?\W{0,4}?(\d+(?:\.\d+)?)", re.I)
_OUT_OF = re.compile(r"(\d+(?:\.\d+)?)\**\s*(?:/|out of)\s*10\b", re.I)
_BARE = re.compile(r"\W*(\d+(?:\.\d+)?)\W*")


def parse_score(reply: str) -> float | None:
    """The 1-10 score in a judge's reply: a JSON `score`, the last `Score: N`, the last
    `N/10` / `N out of 10`, or a reply that is just a number. None when there is none or
    it is outside 1-10."""
    candidates: list[str] = []
    if (block := _JSON.search(reply)) is not None:
        try:
            value = json.loads(block.group(0)).get("score")
            candidates.append(str(value))
        except (ValueError, AttributeError):
            pass
    for pattern in (_LABELLED, _OUT_OF):
        found = pattern.findall(reply)
        if found:
            candidates.append(found[-1])
    if (bare := _BARE.fullmatch(reply)) is not None:
        candidates.append(bare.group(1))
    for text in candidates:
        try:
            score = float(text)
        except ValueError:
            continue
        return score if LOW <= score <= HIGH else None
    return None


def api_key(config: JudgeConfig) -> str:
    if config.api_key_env is None:
        return "no-key"   # the openai client insists on some key; a keyless endpoint ignores it
    key = os.environ.get(config.api_key_env)
    if not key:
        raise UserError(f"judge.api_key_env: the environment variable {config.api_key_env} "
                        "is not set (export it, or set judge.api_key_env: null for an endpoint "
                        "without a key)")
    return key


def make_client(config: JudgeConfig):
    try:
        import openai
    except ImportError:
        raise UserError("the LLM judge needs the openai package: pip install "
                        "'loralab[judge]'") from None
    return openai.OpenAI(base_url=config.base_url, api_key=api_key(config),
                         timeout=config.timeout_seconds, max_retries=config.max_retries)


def judge_one(client, config: JudgeConfig, example: dict[str, Any]) -> tuple[float | None,
                                                                             str, str | None]:
    """(score, reply, error) of one example; UserError when the endpoint cannot be used."""
    import openai

    values = {f: str(example.get(f) or ("(none)" if f == "reference" else "")) for f in FIELDS}
    messages = [{"role": "system", "content": config.system},
                {"role": "user", "content": config.template.format(**values)}]
    try:
        response = client.chat.completions.create(
            model=config.model, messages=messages, temperature=config.temperature,
            max_tokens=config.max_tokens)
    except openai.APIConnectionError as exc:
        raise UserError(f"judge endpoint {config.base_url} is unreachable: {exc}") from None
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise UserError(f"judge endpoint {config.base_url} refused the API key from "
                        f"{config.api_key_env}: HTTP {exc.status_code}") from None
    except openai.NotFoundError:
        raise UserError(f"judge endpoint {config.base_url}: no chat completions for model "
                        f"{config.model!r} (HTTP 404); check judge.base_url (it usually ends "
                        "in /v1) and judge.model") from None
    except openai.APIStatusError as exc:
        return None, "", f"HTTP {exc.status_code}: {exc.message}"
    reply = (response.choices[0].message.content or "") if response.choices else ""
    score = parse_score(reply)
    return score, reply, None if score is not None else "no score from 1 to 10 in the reply"


def judge_answers(config: JudgeConfig, examples: Iterable[dict[str, Any]], *, client=None,
                  progress: bool = False) -> JudgeResult:
    """Score every example (dicts with prompt, answer, reference) with the judge."""
    from tqdm.auto import tqdm

    client = client or make_client(config)
    details = []
    for index, example in enumerate(tqdm(list(examples), desc="judge", disable=not progress)):
        score, reply, error = judge_one(client, config, example)
        details.append({"index": index, "score": score, "reply": reply, "error": error})
    scores = [d["score"] for d in details if d["score"] is not None]
    mean = round(sum(scores) / len(scores), 4) if scores else None
    return JudgeResult({"judge_score": mean, "judge_failures": len(details) - len(scores)},
                       details)
