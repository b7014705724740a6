"""Model work off the event loop in a thread that ends with the work.

PyTorch's CPU kernels run on OpenMP (libgomp on Linux), which keeps a pool of worker threads
for every OS thread that ever ran a parallel region, for as long as that thread lives. Once
the process holds more OpenMP threads than CPUs, libgomp stops spin-waiting between regions
and every region pays a sleep / wake-up, so small matmuls (decode steps) slow down. Measured
on this project's 2-core machine: a [16, 576] x [576, 1536] matmul took 327 us instead of
232 us while another thread's idle pool lived, and SmolLM2-135M generation in the engine's
thread ran 62 instead of 86 tokens/s. `asyncio.to_thread` runs work in the loop's executor,
whose threads live on, so a model load there would leave its pool behind for the whole life
of the server; `in_own_thread` runs it in a fresh thread instead, whose pool goes with it.
The engines' own threads (one per base model) are the only long-lived pools.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_own_thread(function: Callable[..., T], *args: Any, name: str = "model-work") -> T:
    """`await asyncio.to_thread(function, *args)`, in a new thread that exits afterwards."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():               # the awaiting request went away
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result, error = function(*args), None
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:            # the loop closed meanwhile (shutdown)
            pass

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future
