"""Atomic writes: a temp file or folder beside the target, then one rename.

A killed process therefore leaves either the previous complete file or none, never a
half-written one (temp names start with `.` and end with `.tmp`). This is the one place that
does it: text, JSON, bytes written by another library (torch.save, savefig, SQLite) and whole
folders all go through `atomic_path` / `atomic_directory`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loralab.errors import UserError


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


OS_ERROR = re.compile(r"os error (\d+)")  # how Rust libraries (safetensors) report errno


@contextmanager
def named_errors(path: str | Path) -> Iterator[None]:
    """A failed write (a full disk, a read-only folder) becomes an OSError naming `path`, also
    when it surfaced without a file name or from a library that wraps errno in its own type,
    so the one-line error says which file could not be written."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except Exception as exc:
        match = OS_ERROR.search(str(exc))
        if match is None:
            raise
        number = int(match[1])
        raise OSError(number, os.strerror(number), str(path)) from None


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path` to write to (by any means); on success it is synced and
    renamed onto `path` with the umask's file mode; on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        with named_errors(path):
            yield tmp
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are for everyone
            _fsync(tmp)
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temp folder; on success it replaces `path` (an older `path` is removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old.tmp")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_writable_dir(path: str | Path, what: str = "--output") -> None:
    """Refuse, before anything is written, an output folder that cannot be one: an existing
    file, a path under a file, or a place this process cannot write (a temp file is created
    and removed in the nearest existing folder to find out)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder")
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{what} {path} lies under {parent}, which is a file")
    try:
        fd, probe = tempfile.mkstemp(prefix=".loralab-write-test.", suffix=".tmp", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot write in {parent} ({exc.strerror})") from None
