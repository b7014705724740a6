"""The `judge:` config section: an LLM judge behind any OpenAI-compatible endpoint (the
client is loralab.evaluation.judge); off unless the section is given."""

from __future__ import annotations

import string

from pydantic import Field, field_validator

from loralab.config.section import Section

JUDGE_FIELDS = ("prompt", "answer", "reference")
JUDGE_SYSTEM = "You are a strict, fair grader of answers. You reply with a score only."
JUDGE_TEMPLATE = """Rate the answer to the task below from 1 (wrong or useless) to 10 \
(fully correct and complete), comparing it with the reference answer.

Task:
{prompt}

Reference answer:
{reference}

Answer to rate:
{answer}

Reply with one line: "Score: N", N an integer from 1 to 10."""


class JudgeConfig(Section):
    """The optional LLM judge of `loralab eval` (loralab.evaluation.judge)."""
    base_url: str
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=64, ge=1, le=1_048_576)
    timeout_seconds: float = Field(default=60.0, gt=0, le=86_400)
    max_retries: int = Field(default=2, ge=0, le=100)
    system: str = JUDGE_SYSTEM
    template: str = JUDGE_TEMPLATE

    @field_validator("template")
    @classmethod
    def _placeholders(cls, template: str) -> str:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        unknown = names - set(JUDGE_FIELDS)
        if unknown or "answer" not in names:
            raise ValueError(f"judge.template: use the placeholders {{prompt}}, {{answer}} "
                             f"(required) and {{reference}}; found {sorted(names)}")
        return template
