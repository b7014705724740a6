"""What one running server holds: settings, the adapter registry, a micro-batcher per engine,
the feedback store, the recent responses and the metrics; and its start-up and shutdown.

Models load in a background thread after the server starts listening, so `/health` answers
at once and `/ready` turns 200 when every base model and adapter found at start is loaded.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from loralab.serving.adapter_registry import AdapterRegistry
from loralab.serving.discovery import one_line
from loralab.serving.engine_api import ServedEngine
from loralab.serving.feedback import FeedbackStore, ResponseLog
from loralab.serving.metrics import ServerMetrics
from loralab.serving.model_threads import in_own_thread

log = logging.getLogger("loralab.serve")
TOKEN_ENV = "LORALAB_ADMIN_TOKEN"


@dataclass
class ServeSettings:
    models_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    device: str = "auto"
    max_batch_size: int = 64
    max_wait_ms: float = 5.0
    admin_token: str | None = None
    feedback_db: Path | None = None
    bases: list[str] = field(default_factory=list)
    max_input_chars: int = 20000
    max_rows: int = 256
    max_tokens: int = 2048
    max_request_bytes: int = 8 * 1024 * 1024
    response_log: int = 10000

    @property
    def torch_device(self) -> torch.device:
        from loralab.models.placement import resolve_device

        return resolve_device(self.device)


def admin_token(token_file: str | None) -> str | None:
    """The admin token from a file (first line) or the LORALAB_ADMIN_TOKEN variable."""
    from loralab.errors import UserError

    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UserError(f"--admin-token-file {token_file}: {exc.strerror}") from None
        if not token:
            raise UserError(f"--admin-token-file {token_file} is empty")
        return token
    return os.environ.get(TOKEN_ENV) or None


class ServerState:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.metrics = ServerMetrics()
        self.registry = AdapterRegistry(settings.models_dir, settings.torch_device,
                                        settings.max_batch_size)
        self.responses = ResponseLog(settings.response_log)
        db = settings.feedback_db or settings.models_dir / "feedback.sqlite"
        self.feedback = FeedbackStore(db)
        self.batchers: dict[int, Any] = {}
        self.ready = False
        self.load_error: str | None = None
        self.loader: asyncio.Task | None = None

    # ------------------------------------------------------------------ batching
    def batcher(self, engine: ServedEngine) -> Any:
        """The engine's scheduler (a micro-batcher, or continuous batching), started once."""
        key = id(engine)
        if key not in self.batchers:
            name = engine.name
            batcher = engine.scheduler(self.settings.max_batch_size, self.settings.max_wait_ms,
                                       observe=lambda kind, n, name=name:
                                       self.metrics.batch_rows.labels(name, kind).observe(n),
                                       running=self.metrics.in_flight.labels(name))
            batcher.start()
            self.batchers[key] = batcher
        return self.batchers[key]

    # ------------------------------------------------------------------ lifecycle
    def load_models(self) -> None:
        try:
            for base in self.settings.bases:
                self.registry.add_base(base)
            result = self.registry.rescan()
            for name, failure in result["failed"].items():
                log.warning("adapter %s (%s) was not loaded: %s", name, failure["path"],
                            failure["error"])
            self.refresh_gauges()
            self.ready = True
            log.info("ready: %d adapters, %d base models", len(self.registry.adapters),
                     len(self.registry.bases))
        except Exception as exc:  # noqa: BLE001 - reported on /ready, the server stays up
            self.load_error = one_line(exc)
            log.error("loading failed: %s", self.load_error)

    def refresh_gauges(self) -> None:
        with self.registry.lock:
            loaded = len(self.registry.adapters)
            failed = len([n for n in self.registry.failed if n not in self.registry.adapters])
        self.metrics.loaded.set(loaded)
        self.metrics.failed.set(failed)

    async def startup(self) -> None:
        load = in_own_thread(self.load_models, name="model-loader")   # its OpenMP pool goes
        self.loader = asyncio.get_running_loop().create_task(load)    # with it (model_threads)

    async def shutdown(self) -> None:
        for batcher in list(self.batchers.values()):
            await batcher.close()
        self.feedback.close()

