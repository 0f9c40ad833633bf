"""Pydantic models of people and their contact methods."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, StrictInt

from services.common.fields import omittable
from services.oncall.validation import IanaZone, Name, Slug

EMAIL = re.compile(r"^[^@\s<>,;\"]{1,64}@[^@\s<>,;\"]{1,255}$")


def _email(value: str) -> str:
    if not EMAIL.match(value) or value.endswith(".") or ".." in value.split("@")[1]:
        raise ValueError("is not an email address")
    return value


# EMAIL as the OpenAPI documents give it: the domain has no ".." and does not end in "."
# (written out: Python's \\s, which EMAIL uses, is not ECMAScript's)
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_EMAIL_SCHEMA = rf'^[^@{_SPACE}<>,;"]{{1,64}}@\.?([^@{_SPACE}<>,;".]+\.)*[^@{_SPACE}<>,;".]+$'
Email = Annotated[
    str,
    AfterValidator(_email),
    Field(
        max_length=320,
        examples=["ada@example.com"],
        json_schema_extra={"pattern": _EMAIL_SCHEMA},
    ),
]
# beyond its scheme and host, a destination is checked against the operator's policy
# (private addresses, the allow-list: common.destinations), a 422 when refused
Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        examples=["https://hooks.example.com/oncall"],
        json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]+"},
    ),
]
DelayMinutes = Annotated[
    StrictInt,
    Field(ge=0, le=1440, description="minutes after the step fires before this method is used"),
]


class RateLimit(BaseModel):
    """At most `max` notifications per `per_seconds` to this contact method."""

    model_config = ConfigDict(extra="forbid")
    max: StrictInt = Field(ge=1, le=100_000)
    per_seconds: StrictInt = Field(ge=1, le=86_400)


class _Contact(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    id: Slug | None = Field(
        default=None,
        description="client-chosen or generated; on PATCH, the id of a method to keep "
        "(a method without one keeps the id of the current method of the same type and "
        "destination, else it is new)",
    )
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
_SECRET_DESCRIPTION = (
    "the Standard Webhooks secret (whsec_...) that signs this method's requests: shown "
    "only in the answer that created the method (or rotate-secret's), null elsewhere"
)


class EmailContactOut(EmailContact):
    id: str  # type: ignore[assignment]


class WebhookContactOut(WebhookContact):
    id: str  # type: ignore[assignment]
    signing_secret: str | None = Field(default=None, description=_SECRET_DESCRIPTION)


class SlackContactOut(SlackContact):
    id: str  # type: ignore[assignment]
    signing_secret: str | None = Field(default=None, description=_SECRET_DESCRIPTION)


ContactMethodOut = Annotated[
    EmailContactOut | WebhookContactOut | SlackContactOut, Field(discriminator="type")
]
Severity = Literal["critical", "error", "warning", "info"]


class NotificationRule(BaseModel):
    """For alerts of `severity`: use the contact method `contact_method_id`
    `delay_minutes` after the escalation step fires (PagerDuty's urgency rules)."""

    model_config = ConfigDict(extra="forbid")
    severity: Severity
    contact_method_id: Slug
    delay_minutes: DelayMinutes = 0


NotificationRules = Annotated[
    list[NotificationRule],
    Field(
        max_length=100,
        description="rules by alert severity; a severity no rule names uses every "
        "contact method after its own delay_minutes",
    ),
]


class PersonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Slug | None = Field(default=None, description="client-chosen id; generated when absent")
    name: Name
    email: Email | None = None
    timezone: IanaZone = "UTC"
    contact_methods: ContactMethods = []
    notification_rules: NotificationRules = []


class PersonUpdate(BaseModel):
    """Fields to change; `contact_methods` replaces the whole list."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = omittable()
    email: Email | None = None
    timezone: IanaZone | None = omittable()
    contact_methods: ContactMethods | None = omittable()
    notification_rules: NotificationRules | None = omittable()


class Person(BaseModel):
    id: str
    name: str
    email: str | None
    timezone: str
    contact_methods: list[ContactMethodOut]
    notification_rules: list[NotificationRule] = []
    created_at: datetime
    updated_at: datetime
    feed_url: str | None = Field(
        default=None,
        description="the person's 'my shifts' calendar feed while one exists (single GET)",
    )


class RotatedSecret(BaseModel):
    id: str = Field(description="the contact method")
    signing_secret: str = Field(description="the new secret; the old one stops at once")


class FeedUrl(BaseModel):
    feed_url: str = Field(
        description="absolute iCalendar URL carrying its token (no bearer needed); "
        "DELETE .../feed revokes it"
    )
