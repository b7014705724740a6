"""Prometheus metrics of one server (its own registry, so several apps in one process, as in
tests, never collide)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("loralab_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=r)
        self.errors = Counter("loralab_errors", "HTTP requests answered with 4xx/5xx",
                              ["route", "status"], registry=r)
        self.latency = Histogram("loralab_request_seconds", "request latency by route",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_rows = Histogram("loralab_batch_rows", "rows per model batch",
                                    ["engine", "kind"], buckets=BATCH_BUCKETS, registry=r)
        self.in_flight = Gauge("loralab_batches_in_flight", "model batches running now",
                               ["engine"], registry=r)
        self.adapter_rows = Counter("loralab_adapter_rows", "inputs / sequences served per "
                                    "adapter or base model", ["adapter"], registry=r)
        self.tokens = Counter("loralab_generated_tokens", "generated tokens per model",
                              ["model"], registry=r)
        self.loaded = Gauge("loralab_adapters_loaded", "adapters loaded", registry=r)
        self.failed = Gauge("loralab_adapters_failed", "adapter folders that failed to load",
                            registry=r)
        self.feedback = Counter("loralab_feedback", "ratings stored", ["rating"], registry=r)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
