"""TEST DOUBLE, not a judge: a minimal OpenAI-compatible `/v1/chat/completions` endpoint
that returns fixed replies, so tests/test_judge.py can exercise loralab's judge client
(the real `openai` package, real HTTP on 127.0.0.1) without a language model.

The reply depends only on a marker in the request's last message: `[[good]]` -> "Score: 9",
`[[okay]]` -> "**6**/10", `[[json]]` -> '{"score": 3}', `[[unsure]]` -> no score,
`[[huge]]` -> "Score: 42", `[[error]]` -> HTTP 500; anything else -> "Score: 5". A wrong
bearer key gets 401, a model other than `stub-judge` gets 404. Every accepted request body
is kept in `app.state.requests`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

MODEL = "stub-judge"
API_KEY = "stub-key"
REPLIES = {"[[good]]": "The answer matches the reference.\nScore: 9",
           "[[okay]]": "Partly right. **6**/10",
           "[[json]]": '{"score": 3, "reason": "mostly wrong"}',
           "[[unsure]]": "I cannot rate this answer.",
           "[[huge]]": "Score: 42"}
DEFAULT_REPLY = "Score: 5"


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error",
                                   "code": status}}, status_code=status)


def create_app(api_key: str = API_KEY) -> FastAPI:
    app = FastAPI(title="judge stub (test double)")
    app.state.requests = []

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        if request.headers.get("authorization") != f"Bearer {api_key}":
            return error(401, "invalid api key")
        body = await request.json()
        if body.get("model") != MODEL:
            return error(404, f"model {body.get('model')!r} not found")
        app.state.requests.append(body)
        text = body["messages"][-1]["content"]
        if "[[error]]" in text:
            return error(500, "stub failure")
        reply = next((r for marker, r in REPLIES.items() if marker in text), DEFAULT_REPLY)
        return {"id": f"stub-{len(app.state.requests)}", "object": "chat.completion",
                "created": int(time.time()), "model": MODEL,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    return app


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 on a free port in a thread; yields the /v1 base URL and
    always shuts the server down."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the judge stub did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
