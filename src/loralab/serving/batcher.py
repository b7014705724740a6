"""An asyncio micro-batcher per engine: requests that arrive within `max_wait_ms` of the first
one are run together (across adapters) up to `max_batch_size` rows, in the engine's own
worker thread, so the event loop keeps accepting requests while the model runs.

A request whose client has gone (its future cancelled) before its batch starts is dropped
from the batch. The batch in flight always finishes, also on shutdown (`close` waits for it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Job:
    kind: str                      # what the engine runs: "logits", "embed", "generate"
    rows: list[Any]
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Collects jobs for one engine and runs them in batches in one worker thread.

    `run(kind, rows)` runs one batch of one kind and returns one result per row.
    `observe(kind, rows)` (optional) is told the size of every batch run; `running`
    (optional, a gauge) counts the batches running now.
    """

    def __init__(self, name: str, run: Callable[[str, list[Any]], list[Any]],
                 max_batch_size: int = 64, max_wait_ms: float = 5.0,
                 observe: Callable[[str, int], None] | None = None,
                 running: Any = None) -> None:
        self.name = name
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.observe = observe
        self.running = running
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"engine-{name}")
        self.task: asyncio.Task | None = None
        self.busy = False

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, kind: str, rows: list[Any]) -> list[Any]:
        """Results for `rows`, in order; cancelling the await drops the job if not started."""
        if not rows:            # nothing to run (a batch would skip it and never answer)
            return []
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(Job(kind, rows, future))
        return await future

    async def _collect(self, first: Job) -> list[Job]:
        jobs, rows = [first], len(first.rows)
        deadline = time.perf_counter() + self.max_wait
        while rows < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            try:
                job = self.queue.get_nowait() if remaining <= 0 else \
                    await asyncio.wait_for(self.queue.get(), remaining)
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            if job is None:                     # close(): finish what is collected
                self.queue.put_nowait(None)
                break
            jobs.append(job)
            rows += len(job.rows)
        return jobs

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            if first is None:
                return
            jobs = [j for j in await self._collect(first) if not j.future.done()]
            for kind in dict.fromkeys(j.kind for j in jobs):
                group = [j for j in jobs if j.kind == kind and not j.future.done()]
                rows = [row for job in group for row in job.rows]
                if not rows:
                    continue
                self.busy = True
                if self.running is not None:
                    self.running.inc()
                try:
                    results = await loop.run_in_executor(self.executor, self.run, kind, rows)
                except Exception as exc:  # noqa: BLE001 - handed to each waiting request
                    for job in group:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                finally:
                    self.busy = False
                    if self.running is not None:
                        self.running.dec()
                if self.observe is not None:
                    self.observe(kind, len(rows))
                start = 0
                for job in group:
                    part = results[start:start + len(job.rows)]
                    start += len(job.rows)
                    if not job.future.done():
                        job.future.set_result(part)

    async def close(self) -> None:
        """Stop after the batch in flight (and the jobs already collected) are done."""
        if self.task is not None:
            await self.queue.put(None)
            try:
                await asyncio.wait_for(asyncio.shield(self.task), timeout=600)
            except asyncio.TimeoutError:
                self.task.cancel()
        self.executor.shutdown(wait=True)
