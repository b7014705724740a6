"""Where grid runs execute: local processes (`--jobs N`) or Ray tasks (`--backend ray`).

Both call the same `execute_run`, which trains in a child process; an executor only decides
where and how many at once. `on_done(run_dir, status)` is called in the grid process as each
run ends, so the index and the terminal are updated as results arrive.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from loralab.errors import UserError
from loralab.experiments.execute import execute_run, interrupt_all
from loralab.experiments.grid_spec import Resources

OnDone = Callable[[Path, dict[str, Any]], None]


def local_threads(jobs: int, configured: int | None) -> int:
    """Threads per run: the config's training.threads, else the cores shared by the jobs."""
    return configured or max(1, (os.cpu_count() or 1) // jobs)


def run_local(runs: list[tuple[Path, int | None]], jobs: int, on_done: OnDone) -> None:
    """`runs`: (run folder, configured threads). N at once; Ctrl-C stops them all cleanly."""
    pool = ThreadPoolExecutor(max_workers=jobs)
    pending: dict[Future, Path] = {
        pool.submit(execute_run, run_dir, local_threads(jobs, threads)): run_dir
        for run_dir, threads in runs}
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                on_done(pending.pop(future), future.result())
    except KeyboardInterrupt:
        for future in pending:
            future.cancel()
        interrupt_all()
        for future in list(pending):
            if not future.cancelled():
                on_done(pending[future], future.result())
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs Ray: pip install 'loralab[ray]' (or pip install "
                        "ray)") from None
    return ray


def run_ray(runs: list[tuple[Path, int | None]], resources: Resources, address: str | None,
            on_done: OnDone) -> None:
    """Each run is a Ray task asking for `resources` (cpus, gpus); the grid folder must be on
    a file system that every Ray node sees (local Ray: always)."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE",
                                                                               "0")}})
    task = ray.remote(max_retries=0)(execute_run).options(num_cpus=resources.cpus,
                                                          num_gpus=resources.gpus)
    pending = {task.remote(run_dir, threads or resources.cpus): run_dir
               for run_dir, threads in runs}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                on_done(pending.pop(ref), ray.get(ref))
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)  # raises KeyboardInterrupt in the task, which stops its child
        raise
