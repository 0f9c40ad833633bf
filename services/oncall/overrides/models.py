"""Pydantic models of schedule overrides."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.instants import Instant


class OverrideCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule_id: str = Field(min_length=1, max_length=200)
    person_id: str = Field(min_length=1, max_length=200)
    start: Instant
    end: Instant
    reason: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _ordered(self) -> OverrideCreate:
        if not self.start < self.end:
            raise ValueError("start must be before end")
        return self


class Override(BaseModel):
    id: str
    schedule_id: str
    person_id: str
    start: datetime
    end: datetime
    reason: str | None
    created_at: datetime
