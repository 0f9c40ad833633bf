"""A schedule layer: a rotation of participants and the restrictions on when it applies.

Each type is a frozen dataclass that normalises and validates itself (see
:mod:`.schedule` for the conventions) and accepts the SPEC's JSON shapes as
well as typed values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any

from . import coerce
from .errors import FieldError, ScheduleError

__all__ = ["DAYS", "Layer", "Restriction", "Rotation", "RotationType"]

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

MAX_PARTICIPANTS = 1000
MAX_RESTRICTIONS = 50
MAX_LENGTH = 1000
MIN_SHIFT_SECONDS = 3600
MAX_SHIFT_SECONDS = 366 * 86_400
MAX_SHIFT = timedelta(days=3660)  # length × unit, whatever the rotation type


class RotationType(StrEnum):
    """How a rotation's shifts are measured (see ``docs/schedules.md``)."""

    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class Restriction:
    """When a layer may be on call: these weekdays, from ``start`` to ``end`` local time.

    ``end <= start`` crosses midnight (``22:00``-``06:00`` on ``mon`` is Monday
    22:00 to Tuesday 06:00); ``start == end`` is a whole 24 hours from
    ``start``. Days are normalised to lower-case three-letter names in week
    order, duplicates dropped.
    """

    days: tuple[str, ...]
    start: time
    end: time

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        days = _days(self.days, "days", errors)
        start = coerce.time_of_day(self.start, "start", errors, allow_24=False)
        end = coerce.time_of_day(self.end, "end", errors, allow_24=True)
        if errors:
            raise ScheduleError(errors)
        coerce.set_fields(self, days=days, start=start, end=end)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = True) -> Restriction:
        """Build from ``{"days": [...], "start": "09:00", "end": "17:00"}``."""
        return coerce.from_mapping(cls, data, ("days", "start", "end"), strict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {
            "days": list(self.days),
            "start": coerce.fmt_time(self.start),
            "end": coerce.fmt_time(self.end),
        }


def _days(value: Any, name: str, errors: list[FieldError]) -> tuple[str, ...] | None:
    def one(item: Any, item_name: str, errs: list[FieldError]) -> str | None:
        key = item.strip().lower() if isinstance(item, str) else None
        if key in DAYS:
            return key
        if key in _FULL_DAYS:
            return DAYS[_FULL_DAYS.index(key)]
        errs.append(FieldError(item_name, f"must be one of {', '.join(DAYS)}"))
        return None

    days = coerce.items(value, name, errors, one, max_items=14)
    if days is None:
        return None
    if not days:
        errors.append(FieldError(name, "must name at least one day"))
        return None
    return tuple(d for d in DAYS if d in days)


_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Rotation:
    """Participants taking turns of ``length`` units from the ``handoff`` wall time.

    Units: ``hourly`` one hour, ``custom`` ``shift_seconds``, ``daily`` one
    calendar day and ``weekly`` seven calendar days, all measured on the
    zone's wall clock (as iCalendar's ``RRULE`` in a ``TZID``), so handoffs
    keep their local time across DST: a 12-hour rotation from 08:00 hands off
    at 08:00 and 20:00 all year, and the shift spanning a DST change is
    longer or shorter in elapsed time. The rotation extends backwards before
    ``handoff`` as well as forwards (the handoff is an anchor, not a start; a
    configuration starts at its revision's ``effective_from``). A person may appear several times;
    an empty rotation has nobody on call.
    """

    type: RotationType
    handoff: datetime
    participants: tuple[str, ...] = ()
    length: int = 1
    shift_seconds: int | None = None

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        kind: RotationType | None
        try:
            kind = RotationType(self.type)
        except ValueError:
            kind = None
            errors.append(
                FieldError("type", f"must be one of {', '.join(t.value for t in RotationType)}")
            )
        handoff = coerce.wall_datetime(self.handoff, "handoff", errors)
        participants = coerce.items(
            self.participants, "participants", errors, _participant, max_items=MAX_PARTICIPANTS
        )
        length = coerce.integer(self.length, "length", errors, 1, MAX_LENGTH)
        shift_seconds = self.shift_seconds
        if kind is RotationType.CUSTOM:
            shift_seconds = coerce.integer(
                coerce.MISSING if shift_seconds is None else shift_seconds,
                "shift_seconds",
                errors,
                MIN_SHIFT_SECONDS,
                MAX_SHIFT_SECONDS,
            )
        elif shift_seconds is not None:
            errors.append(FieldError("shift_seconds", "only a custom rotation has shift_seconds"))
        if (
            kind is not None
            and length is not None
            and (kind is not RotationType.CUSTOM or shift_seconds)
        ):
            unit = _unit_seconds(kind, shift_seconds)
            if timedelta(seconds=unit * length) > MAX_SHIFT:
                errors.append(FieldError("length", "a shift may last at most 3660 days"))
        if errors:
            raise ScheduleError(errors)
        coerce.set_fields(
            self,
            type=kind,
            handoff=handoff,
            participants=participants,
            length=length,
            shift_seconds=shift_seconds,
        )

    @property
    def shift(self) -> timedelta:
        """Nominal length of one shift (a shift spanning a DST change differs)."""
        return timedelta(seconds=_unit_seconds(self.type, self.shift_seconds) * self.length)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = True) -> Rotation:
        """Build from the SPEC's rotation object."""
        return coerce.from_mapping(cls, data, ("type", "handoff"), strict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {
            "type": self.type.value,
            "length": self.length,
            "shift_seconds": self.shift_seconds,
            "handoff": coerce.fmt_wall(self.handoff),
            "participants": list(self.participants),
        }


def _unit_seconds(kind: RotationType, shift_seconds: int | None) -> int:
    if kind is RotationType.HOURLY:
        return 3600
    if kind is RotationType.DAILY:
        return 86_400
    if kind is RotationType.WEEKLY:
        return 7 * 86_400
    return int(shift_seconds or 0)


def _participant(value: Any, name: str, errors: list[FieldError]) -> str | None:
    return coerce.text(value, name, errors)


@dataclass(frozen=True, slots=True)
class Layer:
    """A named rotation with optional restrictions (none = always allowed)."""

    name: str
    rotation: Rotation
    restrictions: tuple[Restriction, ...] = ()

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        name = coerce.text(self.name, "name", errors)
        rotation = coerce.nested(Rotation)(self.rotation, "rotation", errors)
        restrictions = coerce.items(
            self.restrictions,
            "restrictions",
            errors,
            coerce.nested(Restriction),
            max_items=MAX_RESTRICTIONS,
        )
        if errors:
            raise ScheduleError(errors)
        coerce.set_fields(self, name=name, rotation=rotation, restrictions=restrictions)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = True) -> Layer:
        """Build from ``{"name", "rotation": {...}, "restrictions": [...]}``."""
        return coerce.from_mapping(cls, data, ("name", "rotation"), strict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {
            "name": self.name,
            "rotation": self.rotation.to_dict(),
            "restrictions": [r.to_dict() for r in self.restrictions],
        }
