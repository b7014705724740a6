"""Model work off the event loop runs in a thread that ends with it (serving/model_threads.py):
a long-lived thread that once ran a parallel region keeps an OpenMP pool, which slows every
other thread's small kernels."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch

from loralab.serving.model_threads import in_own_thread


def test_the_work_runs_in_a_thread_that_is_gone_afterwards():
    seen = {}

    def work(a, b):
        seen["thread"] = threading.current_thread()
        return (torch.ones(512, 512) @ torch.ones(512, 512)).sum().item() + a + b

    assert asyncio.run(in_own_thread(work, 1, 2, name="loader")) == 512 ** 3 + 3
    assert seen["thread"] is not threading.main_thread() and seen["thread"].name == "loader"
    seen["thread"].join(5)
    assert not seen["thread"].is_alive()


def test_an_error_reaches_the_awaiting_coroutine():
    def work():
        raise ValueError("no such adapter")

    with pytest.raises(ValueError, match="no such adapter"):
        asyncio.run(in_own_thread(work))


def test_a_cancelled_wait_leaves_the_work_to_finish_quietly():
    release, done = threading.Event(), threading.Event()

    def work():
        release.wait(5)
        done.set()
        return 1

    async def main():
        task = asyncio.ensure_future(in_own_thread(work))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await asyncio.sleep(0.2)       # the thread settles a cancelled future: no error

    asyncio.run(main())
    assert done.is_set()
