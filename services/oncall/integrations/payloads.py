"""What an inbound payload asks for (pure): each alert of it as an `Event`.

Alertmanager and Grafana: one event per alert, keyed by its fingerprint (or one per
notification, keyed by the group key, when the integration says `group`); `resolved`
closes. The summary is `annotations.summary`, else `labels.alertname` (Grafana: else
the notification's title); labels, annotations and the links go into the details.
Generic (GoAlert's model): `summary`, `details`, `dedup`, `action=close`; without
`dedup` the key is a hash of the summary and details, so a repeat deduplicates.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

from services.oncall.alerts.models import Severity
from services.oncall.integrations.models import AlertmanagerPayload, GenericAlert, PromAlert

SEVERITIES = frozenset(get_args(Severity))
MAX_SUMMARY = 1024
MAX_KEY = 200


@dataclass(frozen=True, slots=True)
class Event:
    action: Literal["open", "close"]
    dedup: str
    summary: str
    details: Any
    severity: str


class Refused(ValueError):
    """A payload that asks for nothing valid; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _key(text: str) -> str:
    """A dedup key of bounded length (a long one is hashed)."""
    if len(text) <= MAX_KEY:
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _summary(text: str) -> str:
    text = " ".join(text.split())
    return text[: MAX_SUMMARY - 1] + "…" if len(text) > MAX_SUMMARY else text


def _severity(labels: dict[str, str], default: str) -> str:
    given = labels.get("severity", "").lower()
    return given if given in SEVERITIES else default


def generic(body: GenericAlert, default_severity: str) -> Event:
    summary = _summary(body.summary or "")
    closing = body.action == "close"
    if not summary and not closing:
        raise Refused("summary", "summary is required unless action is close")
    if body.dedup is not None:
        key = body.dedup
    elif summary:
        material = json.dumps([summary, body.details], sort_keys=True, default=str)
        key = "auto:" + hashlib.sha256(material.encode()).hexdigest()[:32]
    else:
        raise Refused("dedup", "closing needs dedup (or the summary and details it opened with)")
    return Event(
        "close" if closing else "open",
        _key(key),
        summary or "closed",
        body.details,
        body.severity or default_severity,
    )


def _details(alert: PromAlert, payload: AlertmanagerPayload) -> dict[str, Any]:
    extra = alert.model_extra or {}
    return {
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": alert.startsAt,
        "endsAt": alert.endsAt,
        "generatorURL": alert.generatorURL,
        "fingerprint": alert.fingerprint,
        **{
            k: v
            for k, v in extra.items()
            if k in {"values", "valueString", "dashboardURL", "panelURL", "silenceURL", "imageURL"}
        },
        "externalURL": payload.externalURL,
        "receiver": payload.receiver,
        "groupKey": payload.groupKey,
    }


def _fingerprint(alert: PromAlert) -> str:
    if alert.fingerprint:
        return alert.fingerprint
    material = json.dumps(sorted(alert.labels.items()))
    return "labels:" + hashlib.sha256(material.encode()).hexdigest()[:16]


def prometheus(
    payload: AlertmanagerPayload,
    *,
    dedup: Literal["fingerprint", "group"],
    default_severity: str,
    fallback_title: str | None = None,
) -> list[Event]:
    """Alertmanager's (and Grafana's) notification as events."""
    if dedup == "group":
        if not payload.groupKey:
            raise Refused("groupKey", "this integration deduplicates by group: groupKey needed")
        labels = {**payload.groupLabels, **payload.commonLabels}
        title = (
            payload.commonAnnotations.get("summary")
            or fallback_title
            or labels.get("alertname")
            or "alert group"
        )
        return [
            Event(
                "close" if payload.status == "resolved" else "open",
                _key("group:" + payload.groupKey),
                _summary(f"{title} ({len(payload.alerts)} alerts)"),
                {
                    "groupKey": payload.groupKey,
                    "groupLabels": payload.groupLabels,
                    "commonLabels": payload.commonLabels,
                    "commonAnnotations": payload.commonAnnotations,
                    "externalURL": payload.externalURL,
                    "alerts": [_details(a, payload) for a in payload.alerts],
                },
                _severity(payload.commonLabels, default_severity),
            )
        ]
    events = []
    for alert in payload.alerts:
        title = (
            alert.annotations.get("summary")
            or alert.labels.get("alertname")
            or fallback_title
            or "alert"
        )
        events.append(
            Event(
                "close" if alert.status == "resolved" else "open",
                _key("fp:" + _fingerprint(alert)),
                _summary(title),
                _details(alert, payload),
                _severity(alert.labels, default_severity),
            )
        )
    return events
