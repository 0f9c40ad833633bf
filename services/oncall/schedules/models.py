"""Pydantic models of schedules, on-call answers and final shifts.

The request models document the JSON shape; the pure schedule types
(`services.oncall.resolver`) validate the semantics (zones, handoff wall
times, restrictions) and their errors are reported in the same 422 as
pydantic's, so one answer lists every problem.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from services.common.fields import omittable
from services.oncall.resolver import Revision, ScheduleError
from services.oncall.validation import IanaZone, Name, Slug, loc_of, merged_validation


class RotationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["hourly", "daily", "weekly", "custom"]
    length: StrictInt = Field(default=1, ge=1, description="units (hours, days, weeks) per shift")
    shift_seconds: StrictInt | None = Field(default=None, description="custom rotations only")
    handoff: str = Field(
        description="local wall time in the schedule's zone, no offset",
        examples=["2026-11-23T09:00"],
    )
    participants: list[str] = Field(default_factory=list, description="person ids in turn order")


class RestrictionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: list[str] = Field(examples=[["mon", "tue", "wed", "thu", "fri"]])
    start: str = Field(examples=["09:00"])
    end: str = Field(examples=["17:00"])


class LayerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    rotation: RotationIn
    restrictions: list[RestrictionIn] = Field(default_factory=list)


Layers = Annotated[list[LayerIn], Field(description="in priority order: first = highest")]


def _domain_errors(data: Any, *, timezone_given: bool) -> list[tuple[tuple[str | int, ...], str]]:
    """Errors of the pure Revision type for this body's timezone and layers."""
    if not isinstance(data, dict):
        return []
    body = {"timezone": data.get("timezone") if timezone_given else "UTC"}
    if "layers" in data:
        body["layers"] = data["layers"]
    try:
        Revision.from_dict(body)
    except ScheduleError as exc:
        return [(loc_of(e.field), e.message) for e in exc.errors if e.field]
    return []


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Slug | None = Field(default=None, description="client-chosen id; generated when absent")
    name: Name
    timezone: IanaZone
    layers: Layers = Field(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _all_errors(cls, data: Any, handler: Any) -> Any:
        return merged_validation(handler, data, _domain_errors(data, timezone_given=True))


class ScheduleUpdate(BaseModel):
    """Changing `timezone` or `layers` adds a revision in force from now on."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = omittable()
    timezone: IanaZone | None = omittable()
    layers: Layers | None = omittable()

    @model_validator(mode="wrap")
    @classmethod
    def _all_errors(cls, data: Any, handler: Any) -> Any:
        given = isinstance(data, dict) and data.get("timezone") is not None
        return merged_validation(handler, data, _domain_errors(data, timezone_given=given))


class PersonRef(BaseModel):
    id: str
    name: str | None = Field(description="null when the person no longer exists")
    email: str | None = None


class NextOncall(BaseModel):
    person: PersonRef | None
    start: datetime


class Oncall(BaseModel):
    schedule_id: str
    at: datetime
    person: PersonRef | None = Field(description="null in a gap")
    source: Literal["override", "layer"] | None
    layer: str | None
    override_id: str | None
    shift_start: datetime | None = Field(description="null beyond the 366-day search horizon")
    shift_end: datetime | None
    next: NextOncall | None


class Schedule(BaseModel):
    id: str
    name: str
    timezone: str
    layers: list[dict[str, Any]]
    revision: int = Field(description="increases with every edit of timezone or layers")
    created_at: datetime
    updated_at: datetime
    oncall: Oncall | None = Field(default=None, description="who is on call now (single GET)")
    feed_url: str | None = Field(
        default=None, description="the calendar feed's URL while one exists (single GET)"
    )


class Shift(BaseModel):
    start: datetime
    end: datetime
    person_id: str | None = Field(description="null in a gap")
    source: Literal["override", "layer"] | None
    layer: str | None
    override_id: str | None


class Shifts(BaseModel):
    schedule_id: str
    since: datetime
    until: datetime
    shifts: list[Shift]
    coverage: float = Field(description="fraction of the range with someone on call")
