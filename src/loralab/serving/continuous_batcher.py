"""Continuous batching for a causal engine: one decode thread that admits waiting rows before
every decode step and hands each request its rows the moment the last of them finishes.

It has the micro-batcher's interface (`start`, `await submit(kind, rows)`, `await close()`),
so the routes do not know which one an engine uses (`ServedEngine.scheduler`). The decode
step itself is `DecodeBatch` (serving/decode_batch.py); here are the queue, the wake-ups and
the request bookkeeping:

- rows wait in arrival order; before each step as many as the batch has room for
  (`--max-batch-size` rows in all) are prefilled together and join the running rows;
- a request of several rows (`n` > 1, several prompts) may be admitted over several steps;
  its future resolves when all its rows are finished, cancelled or failed;
- a client that leaves sets its rows' cancellation: a waiting row is dropped at admission,
  a running one at the next step;
- a failed prefill fails only the request of the row that fails it (a group that fails is
  admitted again row by row); a failed decode step fails the requests of the rows it held;
  the loop goes on;
- `close` lets every submitted row finish, then stops the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loralab.serving.decode_batch import DecodeBatch
from loralab.serving.sampling import GenerationRow

log = logging.getLogger("loralab.serve")


@dataclass(eq=False)
class _Request:
    rows: list[GenerationRow]
    future: concurrent.futures.Future
    left: int

    def row_done(self) -> None:
        self.left -= 1
        if self.left == 0:
            settle(self.future, result=self.rows)

    def failed(self, exc: BaseException) -> None:
        settle(self.future, error=exc)


def settle(future: concurrent.futures.Future, result: Any = None,
           error: BaseException | None = None) -> None:
    """Resolve a future unless it is resolved or cancelled already (a client that left)."""
    try:
        if not future.done():
            future.set_exception(error) if error is not None else future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass


class ContinuousBatcher:
    """Iteration-level scheduling of one causal engine's generation rows."""

    def __init__(self, name: str, engine: Any,
                 observe: Callable[[str, int], None] | None = None,
                 running: Any = None) -> None:
        self.name = name
        self.engine = engine
        self.observe = observe          # told the rows of every decode step
        self.running = running          # gauge: 1 while rows are decoding
        self.waiting: deque[tuple[GenerationRow, _Request]] = deque()
        self.wake = threading.Condition()
        self.closing = False
        self.busy = False
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name=f"decode-{self.name}",
                                       daemon=True)
        self.thread.start()

    async def submit(self, kind: str, rows: list[GenerationRow]) -> list[GenerationRow]:
        """The rows, generated; cancelling the await does not stop them (the route sets
        their cancellation)."""
        if not rows:
            return []
        future: concurrent.futures.Future = concurrent.futures.Future()
        request = _Request(rows, future, len(rows))
        with self.wake:
            if self.closing:
                raise RuntimeError("the server is shutting down")
            self.waiting.extend((row, request) for row in rows)
            self.wake.notify()
        return await asyncio.wrap_future(future)

    async def close(self) -> None:
        with self.wake:
            self.closing = True
            self.wake.notify_all()
        if self.thread is not None:
            await asyncio.to_thread(self.thread.join, 600)

    # ------------------------------------------------------------------ the decode thread
    def _take(self, batch: DecodeBatch) -> list[tuple[GenerationRow, _Request]] | None:
        """The rows to admit now (waiting for work while nothing runs); None: stop."""
        with self.wake:
            while not self.waiting and not len(batch):
                self._set_busy(False)
                if self.closing:
                    return None
                self.wake.wait()
            count = min(batch.room(), len(self.waiting))
            taken = [self.waiting.popleft() for _ in range(count)]
        return [(row, request) for row, request in taken if not request.future.done()]

    def _loop(self) -> None:
        batch = DecodeBatch(self.engine)
        owners: dict[int, _Request] = {}
        while (taken := self._take(batch)) is not None:
            self._set_busy(True)
            if taken:
                self._admit(batch, taken, owners)
            if not len(batch):
                continue
            rows = len(batch)
            try:
                done = batch.step()
            except Exception as exc:  # noqa: BLE001 - handed to each request in the batch
                log.error("decode step failed on %s: %s", self.name, exc)
                self._fail(batch.fail(), exc, owners)
                continue
            if self.observe is not None:
                self.observe("generate", rows)
            self._retire(done, owners)

    def _admit(self, batch: DecodeBatch, taken: list[tuple[GenerationRow, _Request]],
               owners: dict[int, _Request]) -> None:
        for row, request in taken:
            owners[id(row)] = request
        rows = [row for row, _ in taken]
        try:
            self._retire(batch.admit(rows), owners)
        except Exception as exc:  # noqa: BLE001 - the prefill failed: only these rows
            if len(rows) > 1:       # find the row that fails; the others are admitted
                for row, request in taken:
                    self._admit(batch, [(row, request)], owners)
                return
            log.error("prefill failed on %s: %s", self.name, exc)
            self._fail(rows, exc, owners)

    def _retire(self, rows: list[GenerationRow], owners: dict[int, _Request]) -> None:
        for row in rows:
            owners.pop(id(row)).row_done()

    def _fail(self, rows: list[GenerationRow], exc: BaseException,
              owners: dict[int, _Request]) -> None:
        for row in rows:
            owners.pop(id(row)).failed(exc)

    def _set_busy(self, busy: bool) -> None:
        if busy != self.busy and self.running is not None:
            self.running.inc() if busy else self.running.dec()
        self.busy = busy
