"""Pydantic models of people and their contact methods."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field

from services.oncall.validation import IanaZone, Name, Slug

EMAIL = re.compile(r"^[^@\s<>,;\"]{1,64}@[^@\s<>,;\"]{1,255}$")


def _email(value: str) -> str:
    if not EMAIL.match(value) or value.endswith(".") or ".." in value.split("@")[1]:
        raise ValueError("is not an email address")
    return value


Email = Annotated[str, AfterValidator(_email), Field(max_length=320, examples=["ada@example.com"])]
Url = Annotated[
    str, Field(min_length=1, max_length=2048, examples=["https://hooks.example.com/oncall"])
]
DelayMinutes = Annotated[
    int, Field(ge=0, le=1440, description="minutes after the step fires before this method is used")
]


class RateLimit(BaseModel):
    """At most `max` notifications per `per_seconds` to this contact method."""

    model_config = ConfigDict(extra="forbid")
    max: int = Field(ge=1, le=100_000)
    per_seconds: int = Field(ge=1, le=86_400)


class _Contact(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    delay_minutes: DelayMinutes = 0
    rate_limit: RateLimit | None = Field(
        default=None, description="overrides the channel's default rate limit"
    )


class EmailContact(_Contact):
    type: Literal["email"]
    address: Email


class WebhookContact(_Contact):
    type: Literal["webhook"]
    url: Url = Field(validation_alias=AliasChoices("url", "address"))


class SlackContact(_Contact):
    type: Literal["slack"]
    url: Url = Field(validation_alias=AliasChoices("url", "address"))


ContactMethod = Annotated[EmailContact | WebhookContact | SlackContact, Field(discriminator="type")]
ContactMethods = Annotated[list[ContactMethod], Field(max_length=20)]


class PersonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Slug | None = Field(default=None, description="client-chosen id; generated when absent")
    name: Name
    email: Email | None = None
    timezone: IanaZone = "UTC"
    contact_methods: ContactMethods = []


class PersonUpdate(BaseModel):
    """Fields to change; `contact_methods` replaces the whole list."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    email: Email | None = None
    timezone: IanaZone | None = None
    contact_methods: ContactMethods | None = None


class Person(BaseModel):
    id: str
    name: str
    email: str | None
    timezone: str
    contact_methods: list[ContactMethod]
    created_at: datetime
    updated_at: datetime
