"""The one interface every served engine implements; routes, the registry and the server
state call it and never ask which engine they hold.

    engine.serves           what its adapters answer: "classify" or "generate" (the task's)
    engine.base_kind        what the base model alone answers: "embed" or "generate"
    engine.routes           the route families it runs: {"classify", "embed"} / {"generate"}
    engine.require(route, who, what)   WrongRoute (a 400) for a route it does not run
    engine.make_rows(route, items, slot, width)   the rows a route submits to the micro-batcher
    engine.run(route, rows) one batch of one route's rows, in the engine's worker thread
    engine.scheduler(...)   what batches its requests: a micro-batcher of engine.run
                            (encoders), continuous batching (causal LMs)
    engine.acquire / release / attach / detach   slots (loralab.serving.engine)

A new engine (another model family) implements these and is named in
`loralab.serving.adapter_registry.ENGINES` under the `Task.serves` value of its tasks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from loralab.errors import UserError


class WrongRoute(UserError):
    """A route asked of an engine that does not run it (classify on a causal LM, ...)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ServedEngine(ABC):
    """What a route, the registry and the server state need from an engine."""

    name: str
    model: Any                             # the base model (torch.nn.Module)
    tokenizer: Any
    serves: ClassVar[str]                  # "classify" | "generate"
    base_kind: ClassVar[str]               # "embed" | "generate"
    routes: ClassVar[frozenset[str]]
    use_instead: ClassVar[str]             # the routes to use for this engine's models
    what: ClassVar[str]                    # "encoder", "causal LM"
    max_context: int = 0                   # generation: the model's context (0: unknown)
    eos_ids: set[int] | frozenset[int] = frozenset()   # generation: end-of-sequence ids
    note: str | None = None                # how the base was built, worth a log line
    module_names: set[str]                 # the base model's module paths (adapter targets)
    adapter_meta: dict[int, dict]          # slot -> rank, target modules (listing)

    def require(self, route: str, who: str, what: str | None = None,
                param: str | None = "model") -> None:
        if route not in self.routes:
            raise WrongRoute(f"{who!r} is a {what or self.what} model: use {self.use_instead}",
                             param)

    @classmethod
    def for_task(cls, config: Any, task: Any, labels: list[str] | None, device: Any,
                 max_batch_size: int = 64) -> ServedEngine:
        """The engine on the base model the task builds (Task.load_serving_base); every
        engine's constructor takes (name, base, task, device, max_batch_size)."""
        from loralab.models.placement import Placement

        base = task.load_serving_base(config, labels, Placement(device))
        return cls(config.model.name, base, task, device, max_batch_size)  # type: ignore[call-arg]

    def scheduler(self, max_batch_size: int, max_wait_ms: float, observe: Any = None,
                  running: Any = None) -> Any:
        """What queues and batches this engine's requests (started by the server state):
        by default a micro-batcher running `run` on the rows that arrive together."""
        from loralab.serving.batcher import MicroBatcher

        return MicroBatcher(self.name, self.run, max_batch_size, max_wait_ms,
                            observe=observe, running=running)

    @abstractmethod
    def make_rows(self, route: str, items: list[Any], slot: int, width: int = 0) -> list[Any]:
        """The batcher rows of one request (encoded features, or generation rows)."""

    @abstractmethod
    def run(self, route: str, rows: list[Any]) -> list[Any]:
        """One batch of one route's rows: one result per row, in order."""

    @abstractmethod
    def attach(self, weights: Any) -> int:
        """Add an adapter's weights (AdapterWeights); its slot."""

    @abstractmethod
    def acquire(self, slot: int) -> None: ...

    @abstractmethod
    def release(self, slot: int) -> None: ...

    @abstractmethod
    def detach(self, slot: int) -> None: ...

