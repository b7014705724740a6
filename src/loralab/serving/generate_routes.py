"""OpenAI-compatible generation: `POST /v1/completions` and `POST /v1/chat/completions`.

`model` names an adapter or a base causal LM. Every choice is one row of the causal engine's
mixed batch (`n` > 1 repeats the prompt as n rows, seeded seed, seed+1, ...). Chat prompts are
rendered with the adapter's own tokenizer's chat template (the one saved in its folder), with
the adapter's training system prompt when the request has none. `stream: true` sends
server-sent events in OpenAI's chunk format; a client that disconnects has its rows dropped
from the decode loop.

`response_format` (json_object, json_schema) gives every row of the request its own parser
state of the schema's compiled grammar (loralab.serving.structured); such rows share the decode
batch with free rows and rows of other adapters and schemas. The format is checked before the
model is looked up, and compiled per (tokenizer, schema) off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from loralab.models.grammar import ConstraintSpec, Grammar
from loralab.serving import openai_api as oa
from loralab.serving import structured
from loralab.serving.adapter_registry import Lease
from loralab.serving.causal_engine import eos_ids
from loralab.serving.http_errors import ServeError, check_text, unless_disconnected
from loralab.serving.sampling import GenerationRow, Sampling, tokenizer_lock
from loralab.serving.server_state import ServerState

router = APIRouter()


def chat_prompt(lease: Lease, body: oa.ChatRequest) -> str:
    tokenizer = lease.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise ServeError(400, f"{body.model!r} has no chat template; use /v1/completions",
                         "model")
    turns = body.turns
    system = lease.info.config.data.system_prompt if lease.info else None
    if system and not any(t["role"] == "system" for t in turns):
        turns = [{"role": "system", "content": system}, *turns]
    with tokenizer_lock(tokenizer):
        return tokenizer.apply_chat_template(turns, tokenize=False,
                                             add_generation_prompt=True)


def generation_lease(state: ServerState, body: oa.Sampled) -> Lease:
    unsupported = body.unsupported()
    if unsupported:
        raise ServeError(400, f"{unsupported} is not supported by this server", unsupported)
    lease = state.registry.lease(body.model)
    try:
        lease.engine.require("generate", body.model, lease.info.task.name if lease.info else None)
    except BaseException:
        lease.release()
        raise
    return lease


def build_rows(state: ServerState, lease: Lease, prompts: list[str], body: oa.Sampled,
               chat: bool, cancelled: threading.Event, grammar: Grammar | None = None
               ) -> tuple[list[GenerationRow], int]:
    """One row per choice (each with its own parser state of `grammar`, if any), and the
    prompt tokens counted once per prompt."""
    limits, engine, tokenizer = state.settings, lease.engine, lease.tokenizer
    if len(prompts) * body.n > limits.max_rows:
        raise ServeError(413, f"{len(prompts)} prompts x n={body.n} is more than the limit "
                              f"of {limits.max_rows} sequences (--max-rows)", "n")
    asked = getattr(body, "max_completion_tokens", None) or body.max_tokens
    if asked is not None and asked > limits.max_tokens:
        raise ServeError(400, f"max_tokens={asked} is more than the limit of "
                              f"{limits.max_tokens}", "max_tokens")
    rows, prompt_tokens = [], 0
    eos = eos_ids(tokenizer, engine.model) | engine.eos_ids
    for p, prompt in enumerate(prompts):
        check_text(prompt, f"prompt {p + 1}", limits.max_input_chars, "prompt")
        with tokenizer_lock(tokenizer):
            ids = tokenizer(prompt, add_special_tokens=not chat)["input_ids"]
        max_tokens = asked or default_max_tokens(chat, len(ids), engine.max_context,
                                                 limits.max_tokens)
        if engine.max_context and len(ids) + max_tokens > engine.max_context:
            raise ServeError(400, f"prompt {p} is {len(ids)} tokens; with max_tokens="
                                  f"{max_tokens} that is more than the model's context of "
                                  f"{engine.max_context}", "max_tokens")
        prompt_tokens += len(ids)
        for j in range(body.n):
            seed = None if body.seed is None else body.seed + j
            sampling = Sampling(max_tokens, body.temperature, body.top_p, body.stops, seed)
            constraint = None if grammar is None else grammar.constraint()
            rows.append(GenerationRow(ids, lease.slot, sampling, tokenizer, eos,
                                      cancelled=cancelled.is_set, constraint=constraint))
    return rows, prompt_tokens


def default_max_tokens(chat: bool, prompt: int, context: int, limit: int) -> int:
    """OpenAI's defaults: 16 for completions; for chat, what the context has room for."""
    if not chat:
        return 16
    room = context - prompt if context else limit
    return max(1, min(limit, room))


def remember(state: ServerState, response_id: str, lease: Lease, request: dict[str, Any],
             rows: list[GenerationRow], per_prompt: int, chat: bool) -> None:
    choices = [{"prompt_index": i // per_prompt, "text": r.text,
                "finish_reason": r.finish_reason} for i, r in enumerate(rows)]
    state.responses.add(response_id, {
        "kind": "chat" if chat else "completion", "adapter": lease.name,
        "base": lease.info.base if lease.info else lease.name,
        "task": lease.info.task.name if lease.info else None,
        "request": request, "response": {"choices": choices}})


def count(state: ServerState, lease: Lease, rows: list[GenerationRow]) -> int:
    tokens = sum(len(r.token_ids) for r in rows)
    state.metrics.tokens.labels(lease.name).inc(tokens)
    state.metrics.adapter_rows.labels(lease.name).inc(len(rows))
    if lease.entry is not None:
        lease.entry.requests += len(rows)
    return tokens


async def generate(request: Request, body: oa.Sampled, prompts: list[str], chat: bool,
                   logged: dict[str, Any], spec: ConstraintSpec | None) -> Any:
    state: ServerState = request.app.state.serving
    if not prompts:
        raise ServeError(422, "no prompts: give a prompt or a non-empty list of prompts",
                         "prompt")
    lease = generation_lease(state, body)
    cancelled = threading.Event()
    try:
        grammar = await structured.compiled(spec, lease.tokenizer)
        rows, prompt_tokens = build_rows(state, lease, prompts, body, chat, cancelled, grammar)
    except BaseException:
        lease.release()
        raise
    response_id = oa.new_id("chatcmpl" if chat else "cmpl")
    if body.stream:
        events = stream(state, lease, rows, body, chat, response_id, prompt_tokens, cancelled,
                        logged)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    try:
        await unless_disconnected(request, state.batcher(lease.engine).submit("generate", rows))
    finally:
        cancelled.set()             # rows of a client that left stop at the next step
        lease.release()
    tokens = (prompt_tokens, count(state, lease, rows))
    remember(state, response_id, lease, logged, rows, body.n, chat)
    choices = [(r.text, r.finish_reason or "stop") for r in rows]
    build = oa.chat_object if chat else oa.completion_object
    return build(response_id, body.model, choices, tokens)


def sse(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def stream(state: ServerState, lease: Lease, rows: list[GenerationRow], body: oa.Sampled,
                 chat: bool, response_id: str, prompt_tokens: int,
                 cancelled: threading.Event, logged: dict[str, Any]) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[int, str, str | None]] = asyncio.Queue()
    for index, row in enumerate(rows):
        row.on_event = (lambda text, finish, i=index: loop.call_soon_threadsafe(
            events.put_nowait, (i, text, finish)))
    created = int(time.time())
    chunk = oa.chat_chunk if chat else oa.completion_chunk
    work = asyncio.ensure_future(state.batcher(lease.engine).submit("generate", rows))
    try:
        if chat:
            for index in range(len(rows)):
                yield sse(chunk(response_id, body.model, created, index, {"role": "assistant",
                                                                          "content": ""}, None))
        finished = 0
        while finished < len(rows):
            getter = asyncio.ensure_future(events.get())
            done, _ = await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                work.result()           # the engine failed: raise into the error event below
                continue
            index, text, finish = getter.result()
            finished += finish is not None
            if text or finish:
                payload = {"content": text} if chat and text else ({} if chat else text)
                yield sse(chunk(response_id, body.model, created, index, payload, finish))
        await work
        tokens = (prompt_tokens, sum(len(r.token_ids) for r in rows))
        if body.include_usage:
            yield sse(oa.usage_chunk(response_id, body.model, created, chat, tokens))
        remember(state, response_id, lease, logged, rows, body.n, chat)
        yield "data: [DONE]\n\n"
    except Exception as exc:  # noqa: BLE001 - the stream has started: report in-band
        yield sse(oa.error_object(500, f"generation failed: {exc}"))
    finally:
        cancelled.set()
        if not work.done():
            work.cancel()
        lease.release()
        count(state, lease, rows)


STREAMED = {200: {"description": "the completion; with stream: true, server-sent events",
                  "content": {"application/json": {}, "text/event-stream": {}}}}


@router.post("/v1/completions", responses=STREAMED)
async def completions(body: oa.CompletionRequest, request: Request) -> Any:
    spec = await structured.response_spec(body.response_format)
    logged = {"prompts": body.prompts, **structured.logged(body.response_format)}
    return await generate(request, body, body.prompts, False, logged, spec)


@router.post("/v1/chat/completions", responses=STREAMED)
async def chat_completions(body: oa.ChatRequest, request: Request) -> Any:
    spec = await structured.response_spec(body.response_format)
    state: ServerState = request.app.state.serving
    lease = generation_lease(state, body)
    try:
        prompt = chat_prompt(lease, body)
    finally:
        lease.release()
    logged = {"messages": body.turns, **structured.logged(body.response_format)}
    return await generate(request, body, [prompt], True, logged, spec)
