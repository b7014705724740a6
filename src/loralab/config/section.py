"""The base of every config section: unknown keys refused, assignments validated, no boolean
where a number is expected, and every number finite (`.inf` / `.nan` refused with the key
path: a run on an infinite learning rate or alpha only trains to NaN)."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic reads `true` as 1 for a number field; a boolean there is a mistake."""
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if _numeric(annotation):
                raise ValueError(f"expected a number, got the boolean {str(value).lower()}")
        return value


def _numeric(annotation: Any) -> bool:
    """A number field (int / float, optionally None) that does not also accept a bool."""
    members = typing.get_args(annotation) or (annotation,)
    return bool(members) and bool not in members and all(
        m in (int, float, type(None)) for m in members) and any(m in (int, float)
                                                                for m in members)
