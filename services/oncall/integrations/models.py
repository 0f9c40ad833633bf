"""Pydantic models of integration keys and of the payloads they take."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from services.oncall.alerts.models import Alert, Severity
from services.oncall.validation import Name

IntegrationType = Literal["generic", "alertmanager", "grafana", "email", "heartbeat"]
MIN_INTERVAL = 60
MAX_INTERVAL = 30 * 24 * 3600


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    type: IntegrationType
    policy_id: str = Field(min_length=1, max_length=200)
    severity: Severity = Field(
        default="critical",
        description="of the alerts it opens (Alertmanager and Grafana: a `severity` label "
        "of critical, error, warning or info wins)",
    )
    dedup: Literal["fingerprint", "group"] = Field(
        default="fingerprint",
        description="alertmanager and grafana: one alert per firing alert (its fingerprint) "
        "or one per notification group (the group key)",
    )
    interval_seconds: StrictInt | None = Field(
        default=None,
        ge=MIN_INTERVAL,
        le=MAX_INTERVAL,
        description="heartbeat (required there): a ping is expected at least this often",
    )

    @model_validator(mode="after")
    def _interval(self) -> IntegrationCreate:
        if (self.type == "heartbeat") != (self.interval_seconds is not None):
            raise ValueError("interval_seconds is required for a heartbeat and only there")
        return self


class Integration(BaseModel):
    id: str
    name: str
    type: IntegrationType
    policy_id: str
    severity: Severity
    dedup: Literal["fingerprint", "group"]
    interval_seconds: int | None
    last_ping_at: datetime | None = Field(description="heartbeat: the last ping")
    heartbeat_due_at: datetime | None = Field(
        description="heartbeat: an alert opens if no ping comes by then (null before the "
        "first ping and while a missed-heartbeat alert is open)"
    )
    created_at: datetime


class IntegrationCreated(Integration):
    token: str = Field(description="shown once, here: only its hash is stored")
    url: str = Field(
        description="the inbound URL with the token (email: a mailto: address at the "
        "configured INBOUND_EMAIL_DOMAIN)"
    )


class InboundResult(BaseModel):
    action: Literal["opened", "deduplicated", "suppressed", "closed", "not_open", "ping"]
    dedup_key: str | None = None
    alert: Alert | None = None


class InboundAnswer(BaseModel):
    """What an inbound request did: one result per alert of the payload."""

    results: list[InboundResult]


class GenericAlert(BaseModel):
    """GoAlert's generic API: also as form fields or query parameters."""

    model_config = ConfigDict(extra="forbid")
    summary: str | None = Field(default=None, max_length=1024)
    details: Any = Field(default=None, description="text or any JSON")
    dedup: str | None = Field(default=None, min_length=1, max_length=255)
    action: Literal["close"] | None = None
    severity: Severity | None = None


class PromAlert(BaseModel):
    """One alert of an Alertmanager (or Grafana) webhook notification."""

    model_config = ConfigDict(extra="allow")
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str | None = None  # noqa: N815 - the wire name
    endsAt: str | None = None  # noqa: N815
    generatorURL: str | None = None  # noqa: N815
    fingerprint: str | None = Field(default=None, max_length=200)


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook notification (version 4)."""

    model_config = ConfigDict(extra="allow")
    version: str | None = None
    groupKey: str | None = Field(default=None, max_length=4096)  # noqa: N815
    truncatedAlerts: StrictInt | None = None  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str | None = None
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str | None = None  # noqa: N815
    alerts: list[PromAlert] = Field(max_length=1000)


class GrafanaPayload(AlertmanagerPayload):
    """Grafana alerting's webhook contact point: Alertmanager's shape plus its own."""

    orgId: StrictInt | None = None  # noqa: N815
    title: str | None = None
    state: str | None = None
    message: str | None = None
