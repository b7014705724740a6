"""`loralab serve MODELS_DIR --ray --replicas N --max-adapters-per-replica K`: loralab's
engine in N Ray Serve replicas behind one router, with Ray Serve's model multiplexing.

    router (1 replica, the HTTP ingress)   reads each request's adapter (`adapter` / `model`)
        and calls a replica with it as the multiplexed model id; answers /health, /v1/models
        and /v1/adapters from MODELS_DIR itself
    replicas (N; ray_replica.py)           one loralab app each; adapters load on demand, LRU
        eviction past K per replica

docs/serving.md ("Ray Serve replicas") says when to use this, one process, or vLLM, and what a
client sees when a replica dies.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations (Request)
# as objects, through Ray Serve's ingress wrapper
import asyncio
import json
import re
import signal
import time
from collections import OrderedDict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from loralab.errors import UserError
from loralab.serving.discovery import discover
from loralab.serving.model_threads import in_own_thread
from loralab.serving.openai_api import error_object, model_object
from loralab.serving.ray_replica import (
    LOADED_HEADER,
    REPLICA_HEADER,
    drive_asgi,
    http_scope,
    load_into,
)
from loralab.serving.server_state import ServeSettings

ADMIN = re.compile(r"^v1/adapters(/.*)?$")
RESPONSE_ID = re.compile(rb'"id"\s*:\s*"([A-Za-z0-9_-]+)"')
REMEMBERED = 10000                         # response id -> adapter, for /v1/feedback


def check_ray_serve() -> None:
    """One line naming the extra when Ray Serve (or one of its own dependencies) is missing."""
    try:
        from ray import serve  # noqa: F401
    except ImportError as exc:
        raise UserError(f"loralab serve --ray needs Ray Serve ({exc}): "
                        "pip install 'loralab[ray-serve]'") from None


def replica_deployment(max_adapters: int) -> Any:
    from ray import serve

    @serve.deployment(name="loralab-replica", ray_actor_options={"num_cpus": 0})
    class LoraReplica:
        def __init__(self, settings: ServeSettings, threads: int | None) -> None:
            import os

            import torch

            from loralab.serving.app import create_app

            if threads:
                torch.set_num_threads(threads)
            self.settings = settings
            self.app = create_app(settings)
            self.state = self.app.state.serving
            self.state.ready = True            # nothing preloads: adapters load on demand
            self.tag = f"{serve.get_replica_context().replica_id.unique_id}/{os.getpid()}"

        @serve.multiplexed(max_num_models_per_replica=max_adapters)
        async def adapter(self, name: str) -> Any:
            return await in_own_thread(load_into, self.state.registry,
                                       self.settings.models_dir, self.settings.bases, name)

        def headers(self) -> list[tuple[bytes, bytes]]:
            loaded = ",".join(sorted(self.state.registry.adapters))
            return [(REPLICA_HEADER, self.tag.encode()), (LOADED_HEADER, loaded.encode())]

        async def forward(self, method: str, path: str, query: bytes,
                          headers: list[tuple[bytes, bytes]], body: bytes):
            name = serve.get_multiplexed_model_id()
            if name:
                try:
                    await self.adapter(name)
                except (UserError, OSError, ValueError, RuntimeError):
                    pass                   # the app answers: 404 unknown, or the failure
            scope = http_scope(method, path, query, headers)
            async for message in drive_asgi(self.app, scope, body, self.headers):
                yield message

    return LoraReplica


def adapter_of(path: str, body: bytes, limit: int, responses: OrderedDict) -> str | None:
    """The adapter (multiplexed model id) a request is for; None: any replica may answer."""
    if len(body) > limit or not body:
        return None
    try:
        request = json.loads(body)
    except ValueError:
        return None
    if not isinstance(request, dict):
        return None
    if path == "v1/feedback":
        return responses.get(request.get("response_id"))
    if path == "api/v1/classify/batch":
        names = {r.get("adapter") for r in request.get("requests") or [] if isinstance(r, dict)}
        if len(names) > 1:
            raise ValueError("under --ray a batch request holds one adapter's inputs: send one "
                             "request per adapter")
        return next(iter(names), None) if names else None
    name = request.get("adapter", request.get("model"))
    return name if isinstance(name, str) and name else None


def router_deployment() -> Any:
    from ray import serve

    app = FastAPI(title="loralab serve --ray")

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(error_object(status, message, None), status_code=status)

    @serve.deployment(name="loralab-router", ray_actor_options={"num_cpus": 0})
    @serve.ingress(app)
    class Router:
        def __init__(self, replica: Any, settings: ServeSettings) -> None:
            self.replica, self.settings = replica, settings
            self.responses: OrderedDict[str, str] = OrderedDict()

        @app.get("/health")
        async def health(self) -> dict[str, Any]:
            return {"status": "ok"}

        @app.get("/v1/models")
        async def models(self) -> dict[str, Any]:
            found = await asyncio.to_thread(discover, self.settings.models_dir)
            data = [model_object(name, None, 0) for name in sorted(self.settings.bases)]
            data += [model_object(i.name, i.base, 0) for i in sorted(found.found,
                                                                       key=lambda i: i.name)]
            return {"object": "list", "data": data}

        @app.get("/v1/adapters")
        async def adapters(self) -> dict[str, Any]:
            found = await asyncio.to_thread(discover, self.settings.models_dir)
            data = [{"name": i.name, "base": i.base, "task": i.task.name, "path": str(i.path),
                     "status": "available"} for i in sorted(found.found, key=lambda i: i.name)]
            data += [{"name": name, "status": "failed", **failure}
                     for name, failure in sorted(found.failed.items())]
            return {"object": "list", "data": data}

        @app.api_route("/{path:path}", methods=["GET", "POST", "DELETE", "PUT", "PATCH"])
        async def proxy(self, path: str, request: Request) -> Any:
            if ADMIN.match(path) and request.method != "GET":
                return error(400, "under --ray adapters load on demand: put the folder under "
                                  "MODELS_DIR; the admin endpoints are off")
            body = await request.body()
            try:
                name = adapter_of(path, body, self.settings.max_request_bytes, self.responses)
            except ValueError as exc:
                return error(400, str(exc))
            call = self.replica.options(stream=True, multiplexed_model_id=name or "")
            messages = call.forward.remote(request.method, "/" + path,
                                           request.url.query.encode(),
                                           list(request.headers.raw), body)
            start = await messages.__anext__()
            headers = {k.decode("latin-1"): v.decode("latin-1")
                       for k, v in start.get("headers", []) if k.lower() != b"content-length"}
            return StreamingResponse(self.body(messages, name), status_code=start["status"],
                                     headers=headers)

        async def body(self, messages: Any, name: str | None):
            first = True
            async for message in messages:
                chunk = message.get("body", b"")
                if first and name and chunk:
                    self.remember(chunk, name)
                    first = False
                if chunk:
                    yield chunk

        def remember(self, chunk: bytes, name: str) -> None:
            found = RESPONSE_ID.search(chunk[:4096])
            if found:
                self.responses[found.group(1).decode()] = name
                while len(self.responses) > REMEMBERED:
                    self.responses.popitem(last=False)

    return Router


def build_application(settings: ServeSettings, replicas: int, max_adapters: int,
                      threads: int | None = None) -> Any:
    replica = replica_deployment(max_adapters).options(num_replicas=replicas)
    return router_deployment().bind(replica.bind(settings, threads), settings)


def stop_serving(*_: Any) -> None:
    raise KeyboardInterrupt


def serve_on_ray(settings: ServeSettings, replicas: int, max_adapters: int,
                 address: str | None = None, threads: int | None = None) -> int:
    """Start (or join, with --ray-address / RAY_ADDRESS) a Ray cluster, deploy, and block until
    SIGINT / SIGTERM; then the deployment is shut down."""
    import ray
    from ray import serve

    ray.init(address=address, include_dashboard=False, ignore_reinit_error=True,
             log_to_driver=False)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(build_application(settings, replicas, max_adapters, threads), name="loralab",
              route_prefix="/")
    print(f"serving {settings.models_dir} on http://{settings.host}:{settings.port} with "
          f"{replicas} Ray Serve replicas (at most {max_adapters} adapters each)", flush=True)
    signal.signal(signal.SIGTERM, stop_serving)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0
