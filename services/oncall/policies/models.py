"""Pydantic models of escalation policies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from services.common.fields import omittable
from services.oncall.validation import Name, Slug

MAX_STEPS = 20
MAX_TARGETS = 20
MAX_REPEAT = 20


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["person", "schedule"]
    id: str = Field(min_length=1, max_length=200)


class Step(BaseModel):
    """Notify `targets`; escalate to the next step after `delay_minutes` without an ack."""

    model_config = ConfigDict(extra="forbid")
    delay_minutes: StrictInt = Field(default=15, ge=1, le=10_080)
    targets: Annotated[list[Target], Field(min_length=1, max_length=MAX_TARGETS)]


Steps = Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]
Repeat = Annotated[
    StrictInt, Field(ge=0, le=MAX_REPEAT, description="times to start over after the last step")
]


class PolicyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Slug | None = Field(default=None, description="client-chosen id; generated when absent")
    name: Name
    steps: Steps
    repeat: Repeat = 0


class PolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = omittable()
    steps: Steps | None = omittable()
    repeat: Repeat | None = omittable()


class Policy(BaseModel):
    id: str
    name: str
    steps: list[Step]
    repeat: int
    created_at: datetime
    updated_at: datetime
