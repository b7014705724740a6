"""Classification routes: `POST /v1/classify`, the router's `POST /api/v1/classify/batch`,
and OpenAI-style `POST /v1/embeddings` (mean pooling; a base encoder without a head too).

Each input goes through the adapter's Task: raw text to the task's records, `encode`, the
mixed-adapter forward, and `render` — so a result has exactly the JSON shape that
`loralab predict` prints (label + confidence + scores, a value, or entity spans).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from loralab.errors import InputError, UserError
from loralab.serving.adapter_registry import Lease
from loralab.serving.discovery import one_line
from loralab.serving.http_errors import ServeError, check_text, unless_disconnected
from loralab.serving.openai_api import EmbeddingRequest, new_id
from loralab.serving.server_state import ServerState
from loralab.tasks import check_prediction_inputs

router = APIRouter()


class PairInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    text_pair: str | None = None


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    adapter: str
    inputs: list[str | PairInput]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: list[ClassifyRequest] = Field(min_length=1)


def check_size(state: ServerState, texts: list[str], rows: int) -> None:
    """422 for a request without inputs; 413 above the configured limits (--max-rows,
    --max-input-chars)."""
    limits = state.settings
    if rows == 0:
        raise ServeError(422, "no inputs: give at least one text", "inputs")
    if rows > limits.max_rows:
        raise ServeError(413, f"{rows} inputs is more than the limit of {limits.max_rows} "
                              "per request (--max-rows)", "inputs")
    for i, text in enumerate(texts):
        if len(text) > limits.max_input_chars:
            check_text(text, f"input {i + 1}", limits.max_input_chars, "inputs")


def classify_records(lease: Lease, inputs: list[str | PairInput]) -> list[dict[str, Any]]:
    info = lease.info
    if info is None:
        raise ServeError(400, f"{lease.name!r} is a base model without a trained head: "
                              "classify with one of its adapters, or use /v1/embeddings")
    lease.engine.require("classify", info.name, info.task.name, "adapter")
    records = [{"text": i, "text_pair": None} if isinstance(i, str) else
               {"text": i.text, "text_pair": i.text_pair} for i in inputs]
    try:      # the one input rule of `loralab predict` (empty texts, pairs, NUL bytes)
        check_prediction_inputs(records, info.pairs)
    except InputError as exc:
        raise ServeError(422, f"adapter {info.name!r}: {one_line(exc)}", "inputs") from None
    try:
        return info.task.prepare_inputs(records, info.config)
    except UserError as exc:
        raise ServeError(400, one_line(exc), "inputs") from None


async def classify(state: ServerState, adapter: str,
                   inputs: list[str | PairInput]) -> tuple[Lease, list[dict], list[dict]]:
    """(lease, task records, rendered results) of one adapter's inputs."""
    texts = [i if isinstance(i, str) else i.text + (i.text_pair or "") for i in inputs]
    check_size(state, texts, len(inputs))
    lease = state.registry.lease(adapter)
    try:
        records = classify_records(lease, inputs)
        info = lease.info
        try:
            features = info.task.encode(records, lease.tokenizer, info.labels,
                                        info.config.model.max_length)
        except UserError as exc:
            raise ServeError(422, one_line(exc), "inputs") from None
        rows = lease.engine.make_rows("classify", features, lease.slot, info.width)
        logits = await state.batcher(lease.engine).submit("logits", rows)
        results = []
        for record, feature, row_logits in zip(records, features, logits):
            shown = {k: record[k] for k in ("text", "text_pair") if record.get(k)}
            results.append({**shown, **info.task.render(row_logits, record, feature,
                                                        info.labels)})
        lease.entry.requests += len(inputs)
        state.metrics.adapter_rows.labels(info.name).inc(len(inputs))
        return lease, records, results
    finally:
        lease.release()


def remember(state: ServerState, response_id: str, lease: Lease, records: list[dict],
             results: list[dict]) -> None:
    logged = [{k: v for k, v in r.items() if k in ("text", "text_pair", "tokens")
               and v is not None} for r in records]
    state.responses.add(response_id, {
        "kind": "classify", "adapter": lease.info.name, "base": lease.info.base,
        "task": lease.info.task.name, "request": {"inputs": logged},
        "response": {"results": results}})


@router.post("/v1/classify")
async def classify_route(body: ClassifyRequest, request: Request) -> dict[str, Any]:
    state: ServerState = request.app.state.serving
    lease, records, results = await unless_disconnected(
        request, classify(state, body.adapter, body.inputs))
    response_id = new_id("cls")
    remember(state, response_id, lease, records, results)
    return {"id": response_id, "object": "classification", "adapter": body.adapter,
            "task": lease.info.task.name, "results": results}


@router.post("/api/v1/classify/batch")
async def classify_batch(body: BatchRequest, request: Request) -> dict[str, Any]:
    """Several adapters in one request; their inputs share the micro-batches."""
    state: ServerState = request.app.state.serving
    check_size(state, [], sum(len(r.inputs) for r in body.requests) or 0)
    done = await unless_disconnected(request, asyncio.gather(
        *(classify(state, r.adapter, r.inputs) for r in body.requests)))
    responses, parts = [], []
    for part, (lease, records, results) in zip(body.requests, done):
        part_id = new_id("cls")
        remember(state, part_id, lease, records, results)
        parts.append(part_id)
        responses.append({"id": part_id, "adapter": part.adapter,
                          "task": lease.info.task.name, "results": results})
    response_id = new_id("clsb")
    state.responses.add(response_id, {"kind": "batch", "parts": parts})
    return {"id": response_id, "object": "classification.batch", "responses": responses}


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request) -> dict[str, Any]:
    state: ServerState = request.app.state.serving
    texts = body.inputs
    check_size(state, texts, len(texts))
    for i, text in enumerate(texts):
        check_text(text, f"input {i + 1}", state.settings.max_input_chars, "input")
    lease = state.registry.lease(body.model)
    try:
        lease.engine.require("embed", body.model)
        tokenizer = lease.tokenizer
        limit = lease.info.config.model.max_length if lease.info else \
            min(getattr(tokenizer, "model_max_length", 512), 512)
        features = [dict(tokenizer(t, truncation=True, max_length=limit)) for t in texts]
        rows = lease.engine.make_rows("embed", features, lease.slot)
        vectors = await unless_disconnected(
            request, state.batcher(lease.engine).submit("embed", rows))
    finally:
        lease.release()
    state.metrics.adapter_rows.labels(body.model).inc(len(texts))
    tokens = sum(len(f["input_ids"]) for f in features)
    return {"object": "list", "model": body.model,
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                     for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
