"""One grid run in its own process: `python -m loralab.experiments.worker RUN_DIR`.

The worker holds the run's file lock (the one `loralab train` takes, loralab.training.run_lock)
for as long as it trains, so two grid invocations (or a grid whose parent died while this
process went on) never train the same run twice. It resumes from the run folder's checkpoint
when there is one, and records its result in the grid's index itself when it ends, so the
result is indexed even when the grid process that started it was killed.
Exit codes: 0 finished, 1 failed, 2 bad config or data, 3 training diverged, 75 the run is
locked by (or was finished by) another process, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from loralab.errors import UserError
from loralab.experiments.index import RUNS_DIR, record_run
from loralab.experiments.records import FAILED, FINISHED, KILLED, RUNNING
from loralab.experiments.status import CONFIG_FILE, mark, read_metrics
from loralab.models.library_logging import quiet_libraries
from loralab.training.run_lock import RunFolderBusy, hold_run_lock

EXIT_BUSY = 75


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


def run_and_mark(run_dir: Path) -> int:
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
        mark(run_dir, FAILED, error=str(exc), returncode=exc.exit_code)  # 3: diverged
        return exc.exit_code
    except BaseException as exc:  # noqa: BLE001 - any crash is recorded, the grid goes on
        traceback.print_exc()
        mark(run_dir, FAILED, error=f"{type(exc).__name__}: {exc}", returncode=1)
        return 1


def record_in_index(run_dir: Path) -> None:
    """The run's row in GRID/index.sqlite (GRID/runs/<run>): also when the grid is gone."""
    if run_dir.parent.name != RUNS_DIR:
        return
    try:
        record_run(run_dir.parent.parent, run_dir)
    except Exception as exc:  # noqa: BLE001 - `loralab runs reindex` rebuilds it anyway
        print(f"could not record the run in the index ({exc}); run loralab runs reindex",
              file=sys.stderr)


def main(argv: list[str]) -> int:
    run_dir = Path(argv[0])
    try:
        with hold_run_lock(run_dir):
            if read_metrics(run_dir) is not None:  # finished by another process meanwhile
                return EXIT_BUSY
            code = run_and_mark(run_dir)
            record_in_index(run_dir)
            return code
    except RunFolderBusy:
        print(f"{run_dir.name}: locked by another process", file=sys.stderr)
        return EXIT_BUSY


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
