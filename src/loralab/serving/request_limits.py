"""Limits every request meets before a route reads it.

    BodyLimit            ASGI middleware: a body over --max-request-bytes is a 413 before any
                         JSON parsing (Content-Length checked first, streamed bytes counted);
                         a body that is not UTF-8 is a 422
    valid_strings        a dependency of every route: a NUL byte or a string that is not valid
                         Unicode (a lone surrogate, "\\ud800") anywhere in the JSON body is a
                         422 naming the field (loralab.tasks.inputs.string_problem, the rule
                         `loralab predict` applies), never a 500 further down
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from loralab.serving.http_errors import ServeError
from loralab.serving.openai_api import error_object
from loralab.tasks.inputs import string_problem

DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024


class BodyLimit:
    """Refuse bodies over `limit` bytes with a 413; the body read is replayed to the app."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self.refuse(send, int(declared) if declared.isdigit() else None)
            return
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":       # the client left before its body
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.limit:
                await self.refuse(send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            await self.refuse(send, None, 422, "the request body is not valid JSON: not UTF-8 "
                                               f"at byte {exc.start}")
            return

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()                      # disconnect detection

        await self.app(scope, replay, send)

    async def refuse(self, send: Any, size: int | None, status: int = 413,
                     message: str | None = None) -> None:
        told = f" ({size} bytes)" if size is not None else ""
        message = message or (f"the request body{told} is more than the limit of "
                              f"{self.limit} bytes (--max-request-bytes)")
        payload = json.dumps(error_object(status, message, None)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


def bad_string(value: Any, where: str = "") -> tuple[str, str] | None:
    """(field path, problem) of the first invalid string in a JSON value (keys included)."""
    if isinstance(value, str):
        problem = string_problem(value)
        return (where or "body", problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            found = bad_string(key, path) or bad_string(item, path)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = bad_string(item, f"{where}.{i}" if where else str(i))
            if found:
                return found
    return None


async def valid_strings(request: Request) -> None:
    body = await request.body()
    if b"\\u" not in body:          # NUL and surrogates can only come escaped in valid JSON
        return
    try:
        data = json.loads(body)
    except ValueError:
        return                      # the route's parsing reports malformed JSON
    found = bad_string(data)
    if found:
        where, problem = found
        raise ServeError(422, f"{where}: the string {problem}", where)
