"""The schedule types' validation errors: every problem found, each with its field path."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["FieldError", "ScheduleError"]


class FieldError(NamedTuple):
    """One validation problem: a dotted field path and a human message."""

    field: str
    message: str


class ScheduleError(ValueError):
    """Invalid schedule data or query; ``errors`` lists every problem found."""

    def __init__(self, errors: Iterable[FieldError | tuple[str, str]]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(FieldError(*e) for e in errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))

    def to_details(self) -> list[dict[str, str]]:
        """JSON-able list for the error envelope's ``details``."""
        return [{"field": e.field, "message": e.message} for e in self.errors]
