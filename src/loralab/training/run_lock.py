"""One writer per run folder: RUN/.lock, held by the process that trains into RUN.

`loralab train` and grid workers take the same lock, so two processes never mix their files in
one folder; the second is refused with the first one's process id. The lock is re-entrant
within a process (a grid worker holds it, then trains), and `RUN/.lock.owner` names the
holder while it is held. Over a finished run (`--overwrite`) the lock is held without an owner
file, so a killed overwrite leaves the finished folder as it was; the new run's staging
folder names the holder instead (`owner` looks there too).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from loralab.atomic import named_errors
from loralab.errors import UserError

LOCK_FILE = ".lock"
OWNER_FILE = ".lock.owner"
_held: dict[str, int] = {}   # resolved run folder -> nesting depth in this process


class RunFolderBusy(UserError):
    """Another process is writing the run folder."""


def file_lock(run_dir: Path) -> FileLock:
    return FileLock(str(run_dir / LOCK_FILE))


def is_locked(run_dir: Path) -> bool:
    """True when another process holds the run's lock right now."""
    if str(run_dir.resolve()) in _held or not (run_dir / LOCK_FILE).exists():
        return False
    lock = file_lock(run_dir)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def busy_message(run_dir: Path) -> str:
    return (f"{run_dir} is being written by process {owner(run_dir)}; wait for it to finish "
            "or choose another --output")


def staging_dir(run_dir: Path) -> Path:
    """Where `--overwrite` writes the new run beside a finished one."""
    return run_dir.parent / f".{run_dir.name}.new"


def owner(run_dir: Path) -> str:
    for file in (run_dir / OWNER_FILE, staging_dir(run_dir) / OWNER_FILE):
        try:
            return file.read_text(encoding="utf-8").strip() or "?"
        except OSError:
            continue
    return "?"


@contextmanager
def hold_run_lock(run_dir: Path, *, owner_file: bool = True) -> Iterator[None]:
    """Hold RUN/.lock (creating RUN); RunFolderBusy when another process holds it.
    `owner_file` False: write no RUN/.lock.owner (and remove one a killed holder left)."""
    key = str(run_dir.resolve())
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = file_lock(run_dir)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunFolderBusy(busy_message(run_dir)) from None
    _held[key] = 1
    try:
        with named_errors(run_dir / OWNER_FILE):
            if owner_file:
                (run_dir / OWNER_FILE).write_text(f"{os.getpid()}\n", encoding="utf-8")
            else:
                (run_dir / OWNER_FILE).unlink(missing_ok=True)
        yield
    finally:
        del _held[key]
        if owner_file:
            (run_dir / OWNER_FILE).unlink(missing_ok=True)
        lock.release()
