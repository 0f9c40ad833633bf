"""Heartbeats (pure): whether a missed ping opens an alert, and when the next is due.

A heartbeat key expects a ping at least every `interval`. Before its first ping it
is not watched. A ping resolves the missed-heartbeat alert if one is open and sets
the next deadline; the worker asks `decide(..., ping=False)` once a deadline has
passed: an alert opens (once: the deadline is cleared until the next ping).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal


@dataclass(frozen=True, slots=True)
class Decision:
    action: Literal["open", "resolve", "none"]
    due_at: datetime | None  # the next deadline (None: not watched until the next ping)


def decide(
    *,
    interval: timedelta,
    last_ping_at: datetime | None,
    alert_open: bool,
    now: datetime,
    ping: bool,
) -> Decision:
    if ping:
        return Decision("resolve" if alert_open else "none", now + interval)
    if last_ping_at is None:
        return Decision("none", None)
    deadline = last_ping_at + interval
    if now < deadline:
        return Decision("none", deadline)
    return Decision("none" if alert_open else "open", None)
