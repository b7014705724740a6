"""The FastAPI app of `loralab serve`.

    GET  /                         the web page (page/index.html)
    GET  /health  /ready  /metrics liveness, models loaded, Prometheus text
    GET  /v1/models                bases and adapters (OpenAI list, vLLM-style `parent`)
    GET  /v1/adapters              the registry; POST / DELETE / rescan: admin (admin_routes)
    POST /v1/classify              one adapter's inputs  (classify_routes)
    POST /api/v1/classify/batch    several adapters in one request
    POST /v1/embeddings            mean-pooled encoder embeddings
    POST /v1/completions           OpenAI completions   (generate_routes)
    POST /v1/chat/completions      OpenAI chat completions
    POST /v1/feedback              thumbs up / down on a response id
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from loralab.serving import admin_routes, classify_routes, generate_routes
from loralab.serving.http_errors import ERROR_RESPONSES, ServeError, install_handlers
from loralab.serving.openai_api import model_object
from loralab.serving.request_limits import BodyLimit, valid_strings
from loralab.serving.server_state import ServerState, ServeSettings

PAGE = Path(__file__).parent / "page"


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    response_id: str = Field(min_length=1)
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=4000)


class MetricsMiddleware:
    """Counts and times every request by its route template (pure ASGI: streaming and
    disconnects pass through untouched)."""

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.state.metrics.observe_request(route, status[0], time.perf_counter() - started)


def create_app(settings: ServeSettings) -> FastAPI:
    state = ServerState(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await state.startup()
        yield
        await state.shutdown()

    app = FastAPI(title="loralab serve", lifespan=lifespan, docs_url="/docs", redoc_url=None,
                  dependencies=[Depends(valid_strings)], responses=ERROR_RESPONSES)
    app.state.serving = state
    install_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, state=state)      # outermost: 413s counted too
    app.include_router(classify_routes.router)
    app.include_router(generate_routes.router)
    app.include_router(admin_routes.router)
    add_basic_routes(app, state)
    app.mount("/page", StaticFiles(directory=PAGE), name="page")
    return app


def add_basic_routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE / "index.html", media_type="text/html")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"description": "still loading, or loading failed",
                                        "content": {"application/json": {"schema": {
                                            "type": "object"}}}}})
    async def ready() -> JSONResponse:
        if state.ready:
            adapters, bases = state.registry.counts()
            return JSONResponse({"status": "ready", "adapters": adapters, "bases": bases})
        body = {"status": "failed" if state.load_error else "loading",
                "error": state.load_error}
        return JSONResponse(body, status_code=503)

    text = {"text/plain": {"schema": {"type": "string"}}}

    @app.get("/metrics", response_class=Response,
             responses={200: {"description": "Prometheus text", "content": text}})
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_object(name, parent, at) for name, parent, at
                                           in state.registry.models()]}

    @app.post("/v1/feedback")
    async def feedback(body: FeedbackRequest) -> dict[str, Any]:
        logged = state.responses.get(body.response_id)
        if logged is None:
            raise ServeError(404, f"unknown or expired response id {body.response_id!r} (the "
                                  f"last {state.settings.response_log} responses can be rated)",
                             "response_id")
        parts = [state.responses.get(p) for p in logged.get("parts", [])] or [logged]
        ids = [await state.feedback.add(body.rating, body.comment, body.response_id, part)
               for part in parts if part is not None]
        state.metrics.feedback.labels(body.rating).inc()
        return {"id": ids[0], "response_id": body.response_id, "rating": body.rating,
                "stored": len(ids)}
