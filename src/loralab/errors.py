"""User-facing errors: the CLI prints their message on one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input (config, data, arguments): no traceback, exit code 2."""


class ConfigError(UserError):
    """A config value is missing, unknown or of the wrong type; the message names the key path."""


class DataError(UserError):
    """A data file cannot be read as asked; the message names the file, row and column."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None) -> None:
        where = ", ".join(
            part for part in (
                f"file {file}" if file else "",
                f"row {row}" if row is not None else "",
                f"column {column!r}" if column else "",
            ) if part
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.file, self.row, self.column = file, row, column
