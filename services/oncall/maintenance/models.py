"""Pydantic models of maintenance windows."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.instants import Instant
from services.oncall.validation import IanaZone, Name, Slug

UUID_PATTERN = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
RRULE_PATTERN = r"^(RRULE:)?[A-Za-z0-9=;,+-]+$"


class WindowCreate(BaseModel):
    """A window on exactly one of a policy, an integration or a nself-anomaly detector."""

    model_config = ConfigDict(extra="forbid")
    name: Name = "maintenance"
    policy_id: str | None = Field(default=None, min_length=1, max_length=200)
    integration_id: str | None = Field(default=None, pattern=UUID_PATTERN)
    detector_id: Slug | None = None
    start: Instant
    end: Instant = Field(description="the first occurrence's end (each lasts end - start)")
    rrule: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        pattern=RRULE_PATTERN,
        description="RFC 5545 recurrence from start (FREQ DAILY, WEEKLY, MONTHLY or YEARLY; "
        "UNTIL in UTC), in `timezone`'s wall time",
        examples=["FREQ=WEEKLY;BYDAY=SU"],
    )
    timezone: IanaZone = "UTC"

    @model_validator(mode="after")
    def _one_scope(self) -> WindowCreate:
        given = [self.policy_id, self.integration_id, self.detector_id]
        if sum(v is not None for v in given) != 1:
            raise ValueError("name exactly one of policy_id, integration_id, detector_id")
        if not self.start < self.end:
            raise ValueError("start must be before end")
        return self


class Occurrence(BaseModel):
    start: datetime
    end: datetime


class Window(BaseModel):
    id: str
    name: str
    policy_id: str | None
    integration_id: str | None
    detector_id: str | None
    start: datetime
    end: datetime
    rrule: str | None
    timezone: str
    until: datetime | None = Field(description="the last occurrence's end (null: forever)")
    created_at: datetime
    active: Occurrence | None = Field(description="the occurrence in force now, if any")
    next: Occurrence | None = Field(description="the next occurrence to start, if any")
