"""Bad requests become a 4xx with a one-line message in OpenAI's error-object shape
({"error": {"message", "type", "param", "code"}}) on every route; the worker keeps serving."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from loralab.errors import UserError
from loralab.serving.adapter_registry import NotFound
from loralab.serving.discovery import one_line
from loralab.serving.engine_api import WrongRoute
from loralab.serving.openai_api import error_object

log = logging.getLogger("loralab.serve")
T = TypeVar("T")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: int


class ErrorBody(BaseModel):
    """Every 4xx / 5xx answer: OpenAI's error object."""
    error: ErrorDetail


# declared on every route of the OpenAPI schema (the statuses a route may answer besides its
# success; tests/test_serving_fuzz.py checks answers against them)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": what} for status, what in {
        400: "a request this server cannot answer (wrong route for the model, unsupported field)",
        401: "admin endpoint without the right bearer token",
        403: "admin endpoints disabled, or a path outside MODELS_DIR",
        404: "unknown adapter, model or response id",
        409: "an adapter of that name is already loaded",
        413: "body over --max-request-bytes, too many inputs, an input too long",
        422: "malformed JSON, wrong types, empty inputs, invalid strings",
    }.items()}


class ServeError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.headers = status, message, param, headers


def check_text(text: str, what: str, max_chars: int, param: str) -> None:
    """422 for an empty input text, 413 for one longer than --max-input-chars (every route)."""
    if not text.strip():
        raise ServeError(422, f"{what} is empty or only whitespace", param)
    if len(text) > max_chars:
        raise ServeError(413, f"{what} has {len(text)} characters, more than the limit of "
                              f"{max_chars} (--max-input-chars)", param)


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


def error_response(status: int, message: str, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_object(status, message, param), status_code=status,
                        headers=headers)


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'body'}: {first.get('msg', 'invalid')}{more}", where or None


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def serve_error(_: Request, exc: ServeError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.param, exc.headers)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, one_line(exc), "model")

    @app.exception_handler(WrongRoute)
    async def wrong_route(_: Request, exc: WrongRoute) -> JSONResponse:
        return error_response(400, one_line(exc), exc.param)

    @app.exception_handler(UserError)
    async def user_error(_: Request, exc: UserError) -> JSONResponse:
        return error_response(422, one_line(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(exc)
        return error_response(422, message, param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return error_response(500, f"internal error: {one_line(exc)}")


async def unless_disconnected(request: Request, work: Awaitable[T],
                              poll: float | None = None) -> T:
    """Await `work`; cancel it (and raise ClientGone) if the client disconnects first.

    One wait on the work and on the connection's next ASGI message (`http.disconnect` when
    the client goes), not a poll of `is_disconnected` every 0.1 s: a profile of benchmark (b)
    found the polling to be half of the event loop's work per request. `poll` is accepted
    for the callers that passed it and unused."""
    task: asyncio.Future[Any] = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(client_gone(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        raise ClientGone
    finally:
        for pending in (task, gone):
            if not pending.done():
                pending.cancel()


async def client_gone(request: Request) -> None:
    """Returns when the client has disconnected (the body was read before the route ran)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
