"""Per-contact-method rate limits: a token bucket, pure arithmetic.

Each destination (channel + address) has a bucket of `max` tokens refilled
at `max / per_seconds` per second. A notification takes a token; with none
left it waits (stays queued) until one is due, so a flood is spread out and an
ack in the meantime cancels what is still waiting. Nothing is dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

DEFAULTS: dict[str, tuple[int, int]] = {
    # channel: (max notifications, per seconds)
    "email": (10, 600),
    "slack": (30, 60),
    "webhook": (60, 60),
}


@dataclass(frozen=True, slots=True)
class Limit:
    max: int
    per_seconds: int

    @classmethod
    def of(cls, channel: str, configured: Any) -> Limit:
        if isinstance(configured, dict) and configured.get("max") and configured.get("per_seconds"):
            return cls(int(configured["max"]), int(configured["per_seconds"]))
        count, seconds = DEFAULTS.get(channel, (60, 60))
        return cls(count, seconds)


def bucket_key(channel: str, destination: str) -> str:
    return f"{channel}:{hashlib.sha256(destination.strip().lower().encode()).hexdigest()[:40]}"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    tokens: float
    updated_at: datetime
    wait: timedelta


def take(
    limit: Limit, tokens: float | None, updated_at: datetime | None, now: datetime
) -> Decision:
    """Take one token at `now` from a bucket last seen with `tokens` at `updated_at`."""
    rate = limit.max / limit.per_seconds
    if tokens is None or updated_at is None:
        level, stamp = float(limit.max), now
    else:
        elapsed = max(0.0, (now - updated_at).total_seconds())
        level = min(float(limit.max), tokens + elapsed * rate)
        stamp = max(now, updated_at)
    if level >= 1.0:
        return Decision(True, level - 1.0, stamp, timedelta(0))
    return Decision(False, level, stamp, timedelta(seconds=(1.0 - level) / rate))
