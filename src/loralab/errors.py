"""User-facing errors: the CLI prints their message on one line and exits with their code
(2 for a mistake in the input, 3 for a training run that diverged)."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input (config, data, arguments): no traceback, exit code 2."""

    exit_code = 2


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


class InputError(UserError):
    """A prediction input that no adapter can answer (an empty text, a NUL byte, a missing or
    unexpected second text); `index` and `field` locate it (a server answers 422 there)."""

    def __init__(self, message: str, *, index: int | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.index, self.field = index, field


class TrainingDiverged(UserError):
    """The training loss or gradient norm became non-finite: the run stopped at that step
    (exit code 3); its folder records "status": "diverged" and keeps the last checkpoint."""

    exit_code = 3

    def __init__(self, message: str, *, step: int, term: str, value: float) -> None:
        super().__init__(message)
        self.step, self.term, self.value = step, term, value
