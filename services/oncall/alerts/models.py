"""Pydantic models of alerts and their timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["critical", "error", "warning", "info"]
Status = Literal["triggered", "acknowledged", "resolved", "suppressed"]


class AlertCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy_id: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=1024)
    details: Any = Field(default=None, description="any JSON value")
    severity: Severity = "critical"
    dedup_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="while an alert with this key is open, repeats return it and notify nobody",
    )
    source: str | None = Field(default=None, max_length=200, examples=["nself-anomaly"])


class Alert(BaseModel):
    id: str
    policy_id: str
    summary: str
    details: Any
    severity: Severity
    dedup_key: str | None
    source: str | None
    status: Status
    dedup_count: int = Field(description="repeats of the dedup key received while open")
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    integration_id: str | None = Field(
        default=None, description="the integration key that opened it, if one did"
    )
    suppressed_at: datetime | None = Field(
        default=None,
        description="when a maintenance window suppressed it (status suppressed: nobody is "
        "notified until the window ends; then it is released and escalates)",
    )


class TimelineEntry(BaseModel):
    at: datetime
    kind: str = Field(
        description=(
            "triggered, deduplicated, escalated, notification_queued, notification_sent, "
            "notification_failed, notification_failed_permanent, notification_cancelled, "
            "notification_rate_limited, notification_reclaimed, nobody_on_call, "
            "schedule_missing, person_missing, no_contact_methods, escalation_exhausted, "
            "escalation_failed (retried with backoff), "
            "suppressed and released (a maintenance window), "
            "acknowledged, resolved"
        )
    )
    notification_id: str | None
    details: dict[str, Any]


class Notification(BaseModel):
    id: str
    person_id: str
    channel: Literal["webhook", "email", "slack"]
    destination: str = Field(description="email address, or the URL's scheme and host")
    step: int
    loop: int
    status: Literal["pending", "sending", "sent", "failed", "failed_permanent", "cancelled"]
    attempts: int
    idempotency_key: str
    not_before: datetime
    sent_at: datetime | None
    last_error: str | None
    last_status_code: int | None


class AlertDetail(Alert):
    timeline: list[TimelineEntry]
    notifications: list[Notification]
