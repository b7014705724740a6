"""One Ray Serve replica of `loralab serve --ray`: a whole loralab app (registry, engines,
micro-batchers, feedback) whose adapters load on demand.

Ray Serve's model multiplexing (`@serve.multiplexed`) is the adapter cache: the router sends
each request with the adapter's name as its multiplexed model id, Ray routes it to a replica
that has the adapter loaded when one has, the replica loads it on a miss, and past
`max_adapters_per_replica` the least recently used adapter is unloaded (its slot freed in the
registry). A request is driven through the replica's own FastAPI app as ASGI messages, so every
route answers exactly as a single `loralab serve` does, streaming included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from loralab.serving.adapter_registry import AdapterRegistry, NotFound
from loralab.serving.discovery import discover

REPLICA_HEADER = b"x-loralab-replica"
LOADED_HEADER = b"x-loralab-loaded"


class LoadedAdapter:
    """What the multiplexer caches for one adapter: unloading it frees the registry slot.
    Ray calls `__del__` when it evicts; the flag keeps the garbage collector's later call a
    no-op."""

    def __init__(self, registry: AdapterRegistry, name: str, owned: bool) -> None:
        self.registry, self.name, self.owned, self.done = registry, name, owned, False

    def __del__(self) -> None:
        if self.done or not self.owned:
            return
        self.done = True
        try:
            self.registry.unload(self.name)
        except NotFound:
            pass


def find_adapter(models_dir: Path, name: str) -> Any:
    """The AdapterInfo of the folder that `loralab serve` would name `name`."""
    found = discover(models_dir)
    for info in found.found:
        if info.name == name:
            return info
    if name in found.failed:
        raise NotFound(f"adapter {name!r} failed to load: {found.failed[name]['error']}")
    raise NotFound(f"unknown adapter or model {name!r}")


def load_into(registry: AdapterRegistry, models_dir: Path, bases: list[str],
              name: str) -> LoadedAdapter:
    """Load `name` (an adapter under MODELS_DIR or a --base model) into this replica."""
    if name in registry.adapters or name in registry.bases:
        return LoadedAdapter(registry, name, owned=False)
    if name in bases:
        registry.add_base(name)
        return LoadedAdapter(registry, name, owned=False)
    registry.load(find_adapter(models_dir, name))
    return LoadedAdapter(registry, name, owned=True)


def http_scope(method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": query, "headers": headers,
            "server": ("127.0.0.1", 0), "client": ("127.0.0.1", 0)}


async def drive_asgi(app: Any, scope: dict, body: bytes,
                     extra_headers: Any = None) -> AsyncIterator[dict]:
    """Run one request through an ASGI app; yield its `http.response.*` messages as they are
    sent (a stream stays a stream). Closing the iterator early is a client disconnect."""
    messages: asyncio.Queue = asyncio.Queue()
    disconnected = asyncio.Event()
    sent_body = False

    async def receive() -> dict:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start" and extra_headers is not None:
            message = {**message, "headers": [*message.get("headers", []), *extra_headers()]}
        await messages.put(message)

    async def run() -> None:
        try:
            await app(scope, receive, send)
        finally:
            await messages.put(None)

    task = asyncio.get_running_loop().create_task(run())
    try:
        while (message := await messages.get()) is not None:
            yield message
        await task
    finally:
        disconnected.set()
        if not task.done():
            task.cancel()
