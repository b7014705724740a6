"""One grid run in its own process: `python -m loralab.experiments.worker RUN_DIR`.

The worker holds the run's file lock for as long as it trains, so two grid invocations (or a
grid whose parent died while this process went on) never train the same run twice. It resumes
from the run folder's checkpoint when there is one. Exit codes: 0 finished, 1 failed, 2 bad
config or data, 75 the run is locked by (or was finished by) another process,
130 interrupted.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from filelock import FileLock, Timeout

from loralab.errors import UserError
from loralab.experiments.records import FAILED, FINISHED, KILLED, RUNNING
from loralab.experiments.status import CONFIG_FILE, METRICS_FILE, mark
from loralab.quiet import quiet_libraries

LOCK_FILE = ".lock"
EXIT_BUSY = 75


def run_lock(run_dir: Path) -> FileLock:
    return FileLock(str(run_dir / LOCK_FILE))


def try_acquire(lock: FileLock) -> bool:
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return False
    return True


def is_locked(run_dir: Path) -> bool:
    """True when another process holds the run's lock right now."""
    lock = run_lock(run_dir)
    if not try_acquire(lock):
        return True
    lock.release()
    return False


def train_run(run_dir: Path) -> int:
    from loralab.config import parse_yaml, validate_config
    from loralab.training.recipe import train

    quiet_libraries()
    threads = os.environ.get("LORALAB_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    raw = parse_yaml((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    train(validate_config(raw), run_dir, progress=False, resume=True)
    return 0


def main(argv: list[str]) -> int:
    run_dir = Path(argv[0])
    lock = run_lock(run_dir)
    if not try_acquire(lock):
        print(f"{run_dir.name}: locked by another process", file=sys.stderr)
        return EXIT_BUSY
    if (run_dir / METRICS_FILE).is_file():  # finished by another process since it was planned
        lock.release()
        return EXIT_BUSY
    try:
        mark(run_dir, RUNNING, pid=os.getpid())
        code = train_run(run_dir)
        mark(run_dir, FINISHED, returncode=code)
        return code
    except KeyboardInterrupt:
        mark(run_dir, KILLED, error="interrupted (Ctrl-C); the next grid run resumes it",
             returncode=130)
        return 130
    except UserError as exc:
        print(f"loralab: error: {exc}", file=sys.stderr)
        mark(run_dir, FAILED, error=str(exc), returncode=2)
        return 2
    except BaseException as exc:  # noqa: BLE001 - any crash is recorded, the grid goes on
        traceback.print_exc()
        mark(run_dir, FAILED, error=f"{type(exc).__name__}: {exc}", returncode=1)
        return 1
    finally:
        lock.release()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
