"""Turn a data path from the config into the file(s) it names: plain paths or glob patterns."""

from __future__ import annotations

import glob
from pathlib import Path

from loralab.errors import DataError

GLOB_CHARS = set("*?[")


def expand_paths(value: str, key: str) -> list[Path]:
    """The files a config value names, sorted; `key` (e.g. "data.train") is named in errors.

    A value with `*`, `?` or `[` is a glob pattern (`raw/train-*.parquet`) and may match
    several files, which are read one after the other.
    """
    if GLOB_CHARS & set(value):
        matches = sorted(Path(p) for p in glob.glob(value) if Path(p).is_file())
        if not matches:
            raise DataError(f"no file matches this pattern (set by {key})", file=value)
        return matches
    path = Path(value)
    if path.is_dir():
        raise DataError(f"is a folder, not a file (set by {key}); give a file or a glob "
                        "pattern such as folder/*.parquet", file=value)
    if not path.is_file():
        raise DataError(f"file not found (set by {key})", file=value)
    return [path]


def single_path(value: str, key: str) -> Path:
    """Like `expand_paths` but the value must name exactly one file."""
    paths = expand_paths(value, key)
    if len(paths) > 1:
        raise DataError(f"{key} matches {len(paths)} files; this format needs exactly one",
                        file=value)
    return paths[0]
