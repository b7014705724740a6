"""The `loralab` command: a table from sub-command to a plain function.

Each module of this package wires one group of sub-commands (`add_commands(sub)`); its
handlers turn the parsed arguments into a call of the function that does the work, in the
layer that owns it. User errors (bad config, bad data, bad arguments) print one line and exit
with code 2.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable

from loralab.cli import config, data, evaluate, experiments, export, release, serving, train
from loralab.errors import UserError
from loralab.models.library_logging import quiet_libraries

EXIT_USER_ERROR = 2
FILESYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                     errno.EFBIG, errno.ENOTDIR, errno.EISDIR}
# the sub-command groups, in the order `loralab --help` lists them
COMMAND_GROUPS = (train, evaluate, experiments, release, serving, export, data, config)


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
    """argparse errors as loralab's one line (and exit code 2)."""

    def error(self, message: str) -> None:
        command = self.prog.removeprefix("loralab").strip()  # "grid" for `loralab grid`
        where = f"{command}: " if command else ""
        print(f"loralab: error: {where}{message}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)


def filesystem_message(exc: OSError) -> str | None:
    """One line for an error of the file system (full disk, read-only, no permission)."""
    if exc.errno not in FILESYSTEM_ERRNOS:
        return None
    where = f"{exc.filename}: " if exc.filename else ""
    return f"cannot write {where}{exc.strerror or exc}"


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
    except UserError as exc:
        print(f"loralab: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
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
