"""Maintenance windows (pure): when a window is in force, plain values in and out.

A window is one interval ``[start, end)`` or, with an RRULE (RFC 5545, read by
dateutil as the resolver's iCalendar export is written by icalendar), a series of
occurrences: the rule recurs from ``start`` in the window's IANA zone (wall time:
a weekly Sunday 02:00 window stays at 02:00 local across DST, as a recurrence with a
TZID does), ``start`` itself is always the first occurrence, and each occurrence
lasts ``end - start``. No clock is read: every question takes its instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rruleset, rrulestr

# below a day a rule would be walked from its start occurrence by occurrence at every
# question: maintenance recurs daily, weekly, monthly or yearly
FREQUENCIES = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
MAX_DURATION = timedelta(days=31)
MAX_OCCURRENCES = 100_000
_RULE_TEXT = re.compile(r"^[A-Z0-9=;,+\-]+$")


class InvalidWindow(ValueError):
    """A window that cannot be; `field` is the request field to blame."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Occurrence:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    rrule: str | None = None
    timezone: str = "UTC"

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def _rule(window: Window) -> rruleset:
    text = (window.rrule or "").strip().upper().removeprefix("RRULE:")
    if not _RULE_TEXT.fullmatch(text):
        raise InvalidWindow("rrule", "one RRULE, such as FREQ=WEEKLY;BYDAY=SU")
    parts = dict(p.split("=", 1) for p in text.split(";") if "=" in p)
    if parts.get("FREQ") not in FREQUENCIES:
        raise InvalidWindow("rrule", "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY")
    if "DTSTART" in parts:
        raise InvalidWindow("rrule", "the rule starts at the window's start (no DTSTART)")
    dtstart = window.start.astimezone(ZoneInfo(window.timezone))
    try:
        rule = rrulestr(text, dtstart=dtstart, forceset=True)
    except (ValueError, TypeError) as exc:
        raise InvalidWindow("rrule", f"not a valid RRULE: {exc}") from None
    assert isinstance(rule, rruleset)
    rule.rdate(dtstart)  # RFC 5545: DTSTART is the first instance
    return rule


def validate(window: Window) -> datetime | None:
    """Check a window; the end of its last occurrence (None: it recurs forever)."""
    if window.start.tzinfo is None or window.end.tzinfo is None:
        raise InvalidWindow("start", "start and end need an offset")
    if window.end <= window.start:
        raise InvalidWindow("end", "end must be after start")
    if window.rrule is None:
        return window.end
    if window.duration > MAX_DURATION:
        raise InvalidWindow("end", "a recurring window's occurrence lasts at most 31 days")
    rule = _rule(window)
    text = window.rrule.upper()
    if "COUNT=" not in text and "UNTIL=" not in text:
        return None
    last: datetime | None = None
    for count, last in enumerate(rule, start=1):  # noqa: B007 - the last one is wanted
        if count > MAX_OCCURRENCES:
            raise InvalidWindow("rrule", f"more than {MAX_OCCURRENCES} occurrences")
    assert last is not None
    return last.astimezone(UTC) + window.duration


def active(window: Window, now: datetime) -> Occurrence | None:
    """The occurrence in force at `now` (the latest started, if several overlap)."""
    if now < window.start:
        return None
    if window.rrule is None:
        return Occurrence(window.start, window.end) if now < window.end else None
    rule = _rule(window)
    # a start read in absolute time: each occurrence lasts the same real duration
    started = [s.astimezone(UTC) for s in rule.between(now - window.duration, now, inc=True)]
    live = [s for s in started if s <= now < s + window.duration]
    if not live:
        return None
    return Occurrence(live[-1], live[-1] + window.duration)


def next_occurrence(window: Window, now: datetime) -> Occurrence | None:
    """The first occurrence that starts after `now`, if any."""
    if window.rrule is None:
        return Occurrence(window.start, window.end) if now < window.start else None
    found = _rule(window).after(now, inc=False)
    if found is None:
        return None
    start = found.astimezone(UTC)
    return Occurrence(start, start + window.duration)


@dataclass(frozen=True, slots=True)
class Scope:
    """What a window covers: exactly one of a policy, an integration or a detector."""

    policy_id: str | None = None
    integration_id: str | None = None
    detector_id: str | None = None


@dataclass(frozen=True, slots=True)
class AlertScope:
    """What of an alert a window can match: its policy, the integration that opened it,
    and the nself-anomaly detector that paged it (None when another source did)."""

    policy_id: str
    integration_id: str | None = None
    detector_id: str | None = None


def covers(scope: Scope, alert: AlertScope) -> bool:
    return (
        (scope.policy_id is not None and scope.policy_id == alert.policy_id)
        or (scope.integration_id is not None and scope.integration_id == alert.integration_id)
        or (scope.detector_id is not None and scope.detector_id == alert.detector_id)
    )
