"""The `loralab` command: a table from sub-command to a plain function.

Each module of this package wires one group of sub-commands (`add_commands(sub)`); its
handlers turn the parsed arguments into a call of the function that does the work, in the
layer that owns it. User errors (bad config, bad data, bad arguments) print one line and exit
with code 2; a training run that diverged (a non-finite loss) prints one line and exits with
code 3.

Exit codes: 0 success, 1 a failure that is not the input's (a bug, a failed gate rule, a
failed grid run), 2 a user error, 3 training diverged.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path

from loralab.cli import (
    config,
    data,
    evaluate,
    experiments,
    export,
    release,
    serving,
    train,
    tune,
)
from loralab.errors import UserError
from loralab.models.library_logging import quiet_libraries

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3   # loralab.errors.TrainingDiverged.exit_code
# errors only a write can meet, and errors of any access (a read or a write)
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
ACCESS_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR}
FILESYSTEM_ERRNOS = WRITE_ERRNOS | ACCESS_ERRNOS
# the sub-command groups, in the order `loralab --help` lists them
COMMAND_GROUPS = (train, evaluate, experiments, tune, release, serving, export, data, config)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="loralab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    return parser


def _version() -> str:
    from loralab import __version__

    return f"loralab {__version__}"


class Parser(argparse.ArgumentParser):
    """argparse errors as loralab's one line (and exit code 2). Every string argument must be
    non-blank (`--output ''` is refused, not a folder named after the time), except the input
    texts of `predict`, which the prediction input rule checks (loralab.tasks.inputs)."""

    def add_argument(self, *args, **kwargs):  # type: ignore[override]
        if kwargs.get("action", "store") in ("store", "append") and "type" not in kwargs \
                and not set(args) & FREE_TEXT:
            kwargs["type"] = nonblank
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> None:
        command = self.prog.removeprefix("loralab").strip()  # "grid" for `loralab grid`
        where = f"{command}: " if command else ""
        print(f"loralab: error: {where}{message}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)


FREE_TEXT = {"--text", "--text-pair"}


def nonblank(text: str) -> str:
    """argparse type: any string but an empty (or whitespace-only) one."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a value, got the empty string {text!r}")
    return text


def filesystem_message(exc: OSError) -> str | None:
    """One line for an error of the file system (full disk, read-only, no permission). A
    permission error on a file that exists and cannot be read is a failed read, not a write."""
    if exc.errno not in FILESYSTEM_ERRNOS:
        return None
    where = f"{exc.filename}: " if exc.filename else ""
    return f"cannot {access_of(exc)} {where}{exc.strerror or exc}"


def access_of(exc: OSError) -> str:
    """"read" or "write": what the failed operation most likely was."""
    if exc.errno in WRITE_ERRNOS or not exc.filename:
        return "write"
    path = Path(str(exc.filename))
    if path.is_file() and not os.access(path, os.R_OK):
        return "read"
    return "write"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        quiet_libraries()
        return func(args)
    except UserError as exc:  # TrainingDiverged included (exit code 3)
        print(f"loralab: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("loralab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `loralab ... | head`
        sys.stderr.close()
        return 0
    except OSError as exc:
        message = filesystem_message(exc)
        if message is None:
            raise
        print(f"loralab: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR


def one_line(exc: BaseException) -> str:
    """An error's message on one line (a message that spans lines is joined with "; ")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__
