"""AdapterRegistry: which adapters and base models are served, on which loaded base model.

Each adapter name maps to its engine (one loaded base model per group of adapters) and its
slot there, with its metadata, load time and request count. Loading, unloading and rescans
run one at a time (`admin_lock`: loading a base model can take a while) while requests only
take the short `lock` around the name tables. Requests take a `Lease` on an adapter's slot,
so an adapter being unloaded finishes its requests in flight (new ones get 404) and its slot
is cleared only after the last of them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from loralab.config import Config
from loralab.errors import UserError
from loralab.serving.adapter_weights import read_adapter_weights
from loralab.serving.causal_engine import CausalEngine
from loralab.serving.discovery import AdapterInfo, describe, discover, one_line
from loralab.serving.encoder import EncoderEngine
from loralab.serving.engine_api import ServedEngine
from loralab.tasks import Task, get_task, serving_base_config

log = logging.getLogger("loralab.serve")
# the engine for what a task's adapters answer (Task.serves)
ENGINES: dict[str, type[ServedEngine]] = {"classify": EncoderEngine, "generate": CausalEngine}


@dataclass
class Entry:
    info: AdapterInfo
    engine: ServedEngine
    slot: int
    loaded_at: float
    load_seconds: float
    tokenizer: Any = None
    requests: int = 0

    def describe(self) -> dict[str, Any]:
        weights = self.engine.adapter_meta.get(self.slot, {})
        return {"name": self.info.name, "status": "loaded", "base": self.info.base,
                "task": self.info.task.name, "labels": self.info.labels,
                "rank": weights.get("rank"), "target_modules": weights.get("targets"),
                "path": str(self.info.path), "loaded_at": self.loaded_at,
                "load_seconds": round(self.load_seconds, 3), "requests": self.requests,
                "chat": bool(getattr(self.tokenizer, "chat_template", None)),
                "kind": self.engine.serves,
                "pairs": self.info.pairs}


@dataclass
class Lease:
    """A request's hold on one adapter slot (or slot 0, a base model alone)."""
    engine: ServedEngine
    slot: int
    entry: Entry | None = None
    _released: bool = field(default=False, repr=False)

    @property
    def info(self) -> AdapterInfo | None:
        return self.entry.info if self.entry else None

    @property
    def tokenizer(self) -> Any:
        return self.entry.tokenizer if self.entry else self.engine.tokenizer

    @property
    def name(self) -> str:
        return self.entry.info.name if self.entry else self.engine.name

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.engine.release(self.slot)


class NotFound(UserError):
    """An unknown (or just unloaded) adapter or model name."""


class AdapterRegistry:
    def __init__(self, models_dir: Path, device: torch.device, max_batch_size: int = 64) -> None:
        self.models_dir = models_dir
        self.device = device
        self.max_batch_size = max_batch_size
        self.lock = threading.RLock()          # the tables below
        self.admin_lock = threading.RLock()    # one load / unload / rescan at a time
        self.engines: dict[tuple, ServedEngine] = {}
        self.adapters: dict[str, Entry] = {}
        self.failed: dict[str, dict[str, Any]] = {}
        self.bases: dict[str, ServedEngine] = {}       # base model name -> an engine serving it
        self.unloaded: set[Path] = set()   # folders unloaded on request: rescans skip them

    # ------------------------------------------------------------------ engines
    def engine_for(self, config: Config, task: Task,
                   labels: list[str] | None = None) -> ServedEngine:
        """The engine serving `task`'s adapters on config's base model (built by the task the
        first time: one per base model, revision, GGUF file, quantization and head class)."""
        model = config.model
        key = (model.name, model.revision, model.gguf_file, model.quantization,
               task.auto_model_class)
        with self.admin_lock:
            if key not in self.engines:
                started = time.perf_counter()
                engine = ENGINES[task.serves].for_task(config, task, labels, self.device,
                                                       self.max_batch_size)
                log.info("loaded base model %s (%s) in %.1f s", model.name,
                         task.auto_model_class, time.perf_counter() - started)
                if engine.note:
                    log.warning("%s: %s", model.name, engine.note)
                with self.lock:
                    self.engines[key] = engine
                    self.bases.setdefault(config.model.name, engine)
            return self.engines[key]

    def add_base(self, name: str) -> ServedEngine:
        config = serving_base_config(name)
        return self.engine_for(config, get_task(config.model.task, config))

    # ------------------------------------------------------------------ load / unload
    def load(self, info: AdapterInfo) -> Entry:
        with self.admin_lock:
            if info.name in self.adapters:
                raise UserError(f"an adapter named {info.name!r} is already loaded")
            started = time.perf_counter()
            try:
                engine = self.engine_for(info.config, info.task, info.labels)
                weights = read_adapter_weights(info.path, engine.module_names)
                tokenizer = adapter_tokenizer(info.path, engine)
                slot = engine.attach(weights)
            except (UserError, OSError, ValueError, RuntimeError) as exc:
                with self.lock:
                    self.failed[info.name] = {"path": str(info.path), "error": one_line(exc)}
                raise
            engine.adapter_meta[slot] = {"rank": weights.rank, "targets": relative_targets(
                weights.target_modules)}
            entry = Entry(info, engine, slot, time.time(), time.perf_counter() - started,
                          tokenizer)
            with self.lock:
                self.adapters[info.name] = entry
                self.failed.pop(info.name, None)
            log.info("loaded adapter %s (%s, r=%s) on %s", info.name, info.task.name,
                     weights.rank, info.base)
            return entry

    def load_path(self, path: Path, name: str | None = None) -> Entry:
        entry = self.load(describe(path, name or path.name, self.models_dir))
        self.unloaded.discard(path.resolve())
        return entry

    def unload(self, name: str) -> None:
        """Never waits for a load or a forward pass: the table lock and the engine's slot
        lock only (a load in progress under another name goes on)."""
        with self.lock:
            entry = self.adapters.pop(name, None)
            if entry is None:
                raise NotFound(f"no adapter named {name!r} is loaded")
            entry.engine.detach(entry.slot)
            self.unloaded.add(entry.info.path.resolve())
            log.info("unloaded adapter %s", name)

    def rescan(self) -> dict[str, Any]:
        """Load every adapter folder under MODELS_DIR that is not loaded yet (folders unloaded
        on request stay unloaded until they are loaded by name again)."""
        with self.admin_lock:
            loaded_paths = {e.info.path.resolve() for e in self.adapters.values()}
            loaded_paths |= self.unloaded
            found = discover(self.models_dir, skip=loaded_paths)
            with self.lock:
                self.failed.update(found.failed)
            added, failed = [], dict(found.failed)
            for info in found.found:
                if info.name in self.adapters:
                    info.name = info.path.relative_to(self.models_dir).as_posix()
                try:
                    added.append(self.load(info).info.name)
                except (UserError, OSError, ValueError, RuntimeError) as exc:
                    failed[info.name] = {"path": str(info.path), "error": one_line(exc)}
                    log.warning("adapter %s failed to load: %s", info.name, one_line(exc))
            return {"loaded": added, "failed": failed}

    # ------------------------------------------------------------------ requests
    def lease(self, model: str) -> Lease:
        """Hold the named adapter (or base model) for one request."""
        with self.lock:
            entry = self.adapters.get(model)
            if entry is not None:
                entry.engine.acquire(entry.slot)
                return Lease(entry.engine, entry.slot, entry)
            engine = self.bases.get(model)
            if engine is not None:
                engine.acquire(0)
                return Lease(engine, 0)
            known = ", ".join(sorted(self.adapters)[:10]) or "none loaded"
        raise NotFound(f"unknown adapter or model {model!r} (adapters: {known})")

    def models(self) -> list[tuple[str, str | None, float]]:
        """(name, parent base or None, loaded at) of every base and adapter, read under the
        table lock (hot loads insert from other threads)."""
        with self.lock:
            return [(name, None, 0.0) for name in sorted(self.bases)] + [
                (name, entry.info.base, entry.loaded_at)
                for name, entry in sorted(self.adapters.items())]

    def counts(self) -> tuple[int, list[str]]:
        """(adapters loaded, base model names), under the table lock."""
        with self.lock:
            return len(self.adapters), sorted(self.bases)

    def base_listing(self) -> list[dict[str, Any]]:
        """Base models served alone: "generate" (causal LM) or "embed" (encoder)."""
        with self.lock:
            return [{"name": name, "kind": e.base_kind,
                     "chat": bool(getattr(e.tokenizer, "chat_template", None))}
                    for name, e in sorted(self.bases.items())]

    def listing(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = [e.describe() for _, e in sorted(self.adapters.items())]
            rows += [{"name": n, "status": "failed", **f} for n, f in sorted(self.failed.items())
                     if n not in self.adapters]
            return rows


def adapter_tokenizer(path: Path, engine: ServedEngine) -> Any:
    """The tokenizer saved in the adapter folder (its chat template, its EOS), else the
    base model's."""
    if not (path / "tokenizer_config.json").is_file():
        return engine.tokenizer
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def relative_targets(modules: list[str]) -> list[str]:
    """Target module names as a reader knows them (`attention.self.query`), layers folded."""
    from loralab.models.architectures import split_layer_name

    names = set()
    for module in modules:
        parts = split_layer_name(module)
        names.add(parts[2] if parts else module)
    return sorted(names)
