"""OpenAI-compatible shapes: requests of /v1/completions, /v1/chat/completions,
/v1/embeddings, and the response, stream-chunk, model-list and error objects.

Fields the server cannot honour are refused with a 400 rather than silently ignored
(logprobs, echo, best_of > 1, suffix, tools, penalties); unknown extra fields are ignored,
as the OpenAI API does. `response_format` (text, json_object, json_schema) is checked by
loralab.serving.structured, which answers its 400s.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 409: "invalid_request_error",
               413: "invalid_request_error", 422: "invalid_request_error",
               503: "server_error", 500: "server_error"}


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class JsonSchemaFormat(Request):
    """`response_format.json_schema`: `schema` is any JSON value here (checked as a JSON
    Schema by the route, so that a wrong one is a 400 naming it); `strict` is accepted and
    changes nothing: the schema is always enforced."""
    name: str | None = None
    description: str | None = None
    schema_: Any = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(Request):
    """OpenAI's `response_format`: `type` is text, json_object or json_schema (any other, or
    none, is a 400 from the route)."""
    type: str | None = None
    json_schema: JsonSchemaFormat | None = None


class Sampled(Request):
    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    n: int = Field(default=1, ge=1, le=16)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    logprobs: Any = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    response_format: ResponseFormat | None = None

    def unsupported(self) -> str | None:
        """The first requested feature this server does not implement."""
        if self.logprobs not in (None, False):
            return "logprobs"
        if self.presence_penalty or self.frequency_penalty:
            return "presence_penalty / frequency_penalty"
        return None

    @property
    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class CompletionRequest(Sampled):
    prompt: str | list[str]
    echo: bool = False
    best_of: int | None = None
    suffix: str | None = None

    def unsupported(self) -> str | None:
        if self.echo:
            return "echo"
        if self.best_of not in (None, 1):
            return "best_of"
        if self.suffix:
            return "suffix"
        return super().unsupported()

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class ContentPart(Request):
    type: Literal["text"]
    text: str


class ChatMessage(Request):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatRequest(Sampled):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[Any] | None = None

    def unsupported(self) -> str | None:
        if self.tools:
            return "tools"
        return super().unsupported()

    @property
    def turns(self) -> list[dict[str, str]]:
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text}
                for m in self.messages]


class EmbeddingRequest(Request):
    model: str
    input: str | list[str]
    encoding_format: Literal["float"] = "float"

    @property
    def inputs(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_object(response_id: str, model: str, choices: list[tuple[str, str]],
                      tokens: tuple[int, int]) -> dict[str, Any]:
    return {"id": response_id, "object": "text_completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": i, "text": text, "logprobs": None, "finish_reason": finish}
                        for i, (text, finish) in enumerate(choices)],
            "usage": usage(*tokens)}


def chat_object(response_id: str, model: str, choices: list[tuple[str, str]],
                tokens: tuple[int, int]) -> dict[str, Any]:
    return {"id": response_id, "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": finish}
                        for i, (text, finish) in enumerate(choices)],
            "usage": usage(*tokens)}


def completion_chunk(response_id: str, model: str, created: int, index: int, text: str,
                     finish: str | None) -> dict[str, Any]:
    return {"id": response_id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": index, "text": text, "logprobs": None,
                         "finish_reason": finish}]}


def chat_chunk(response_id: str, model: str, created: int, index: int, delta: dict[str, str],
               finish: str | None) -> dict[str, Any]:
    return {"id": response_id, "object": "chat.completion.chunk", "created": created,
            "model": model,
            "choices": [{"index": index, "delta": delta, "logprobs": None,
                         "finish_reason": finish}]}


def usage_chunk(response_id: str, model: str, created: int, chat: bool,
                tokens: tuple[int, int]) -> dict[str, Any]:
    return {"id": response_id, "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created, "model": model, "choices": [], "usage": usage(*tokens)}


def model_object(name: str, parent: str | None, created: float) -> dict[str, Any]:
    """vLLM's shape: adapters name their base model as `parent` (and `root`)."""
    return {"id": name, "object": "model", "created": int(created), "owned_by": "loralab",
            "root": parent or name, "parent": parent}


def error_object(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": status}}
