"""Run one grid run in a child process and record how it ended.

The parent never trains: a crash, an out-of-memory kill or a segfault in the child becomes a
`failed` or `killed` record with the log's tail, and the grid goes on. Killed runs (by a signal,
Ctrl-C, or a dead parent) are restarted by the next invocation and resume from their checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from loralab.experiments.records import FAILED, KILLED, RUNNING
from loralab.experiments.status import LOG_FILE, log_tail, mark, read_status
from loralab.experiments.worker import EXIT_BUSY
from loralab.training.run_lock import RunFolderBusy, hold_run_lock, is_locked

BUSY = "busy"
_children: set[subprocess.Popen] = set()
_children_lock = threading.Lock()


def child_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if threads:
        for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "LORALAB_THREADS"):
            env[key] = str(threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def execute_run(run_dir: Path, threads: int | None = None) -> dict[str, Any]:
    """Train the run in `run_dir` (its config.yaml is written) in a child process; returns the
    final run.json contents, or {"status": "busy"} when another process holds the run."""
    if is_locked(run_dir):
        return {"status": BUSY}
    with (run_dir / LOG_FILE).open("ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "loralab.experiments.worker", str(run_dir)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=child_env(threads), start_new_session=True)
        with _children_lock:
            _children.add(child)
        try:
            code = wait_forwarding_interrupts(child)
        finally:
            with _children_lock:
                _children.discard(child)
    if code == EXIT_BUSY:
        return {"status": BUSY}
    return settle(run_dir, code)


def wait_forwarding_interrupts(child: subprocess.Popen) -> int:
    """Wait; on Ctrl-C in this thread, pass it to the child and let it stop cleanly."""
    try:
        return child.wait()
    except KeyboardInterrupt:
        interrupt(child)
        child.wait()
        raise


def settle(run_dir: Path, code: int) -> dict[str, Any]:
    """The child's own record, or (if it died without writing one) a `killed` record."""
    status = read_status(run_dir)
    if status.get("status") == RUNNING:
        try:
            with hold_run_lock(run_dir):
                status = mark(run_dir, KILLED, error=signal_text(code), returncode=code,
                              log_tail=log_tail(run_dir))
        except RunFolderBusy:
            return status  # someone else took the run over in the meantime
    elif status.get("status") in (FAILED, KILLED):
        status = mark(run_dir, status["status"], log_tail=log_tail(run_dir))
    return status


def signal_text(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (out of memory, or killed)" if name == "SIGKILL" else ""
        return f"the run's process was killed by {name}{hint}"
    return f"the run's process exited with code {code} without a result"


def interrupt(child: subprocess.Popen) -> None:
    if child.poll() is None:
        try:
            child.send_signal(signal.SIGINT)
        except ProcessLookupError:
            pass


def interrupt_all() -> None:
    with _children_lock:
        children = list(_children)
    for child in children:
        interrupt(child)
