"""The delivery discipline both outboxes follow (pages to on-call, notifications).

nself-anomaly's page sender (``np_anomaly_page_outbox``) and nself-oncall's
notification delivery (``np_oncall.notifications``) keep their own tables and
their own SQL; what a delivery attempt *means* is decided here, once, in pure
functions (plain values in and out, the instant always passed in):

* :func:`classify_status`: an HTTP answer (or none) is ``sent`` (2xx),
  ``retry`` (no answer: a connection error or a timeout; 5xx, 408, 429) or
  ``permanent`` (any other status: other 4xx, a 3xx since redirects are not
  followed).
* :func:`parse_retry_after`: a ``Retry-After`` value in delta-seconds or as an
  HTTP-date (relative to the answer's ``Date`` when it has one, else to the
  given instant), clamped to ``[0, MAX_RETRY_AFTER_SECONDS]``.
* :class:`RetryPolicy`: exponential backoff with "equal jitter" (half fixed,
  half random) up to a cap, ``Retry-After`` honoured up to the same cap, and
  the attempt limit: :meth:`RetryPolicy.decide` turns an outcome into the
  next state (sent, retry at an instant, or failed for good).
* :class:`Lease`: a claim is a lease (``FOR UPDATE SKIP LOCKED`` in each
  store); a row whose lease ran out is claimed again and sent again with the
  same idempotency key, unless its attempts are used up
  (:meth:`RetryPolicy.exhausted`): then it is failed for good, so a
  notification whose worker keeps dying still ends.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

Outcome = Literal["sent", "retry", "permanent"]
Verdict = Literal["sent", "retry", "failed_permanent"]

# statuses below 500 worth another attempt: Request Timeout, Too Many Requests
RETRYABLE_4XX = frozenset({408, 429})
# a destination may ask for a pause, not for an unbounded one
MAX_RETRY_AFTER_SECONDS = 86400.0
_DELTA_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def classify_status(status: int | None) -> Outcome:
    """What an attempt's answer means; None is no answer (connection error, timeout)."""
    if status is None:
        return "retry"
    if 200 <= status < 300:
        return "sent"
    if status >= 500 or status in RETRYABLE_4XX:
        return "retry"
    return "permanent"


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_retry_after(
    value: str | None,
    *,
    now: datetime,
    date: str | None = None,
    cap: float = MAX_RETRY_AFTER_SECONDS,
) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait, within ``[0, cap]``; None when absent
    or unusable (the backoff alone decides then).

    Delta-seconds (``120``) or an HTTP-date (``Wed, 21 Oct 2026 07:28:00 GMT``); a
    date counts from the answer's ``Date`` header when given and valid (so the
    two clocks need not agree), else from ``now``. A date in the past is 0.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        when = _http_date(text)
        if when is None:
            return None
        reference = _http_date(date) or now
        seconds = (when - reference).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), cap)


class Decision(NamedTuple):
    """The state an attempt leads to: ``retry_at`` is set for a retry only."""

    verdict: Verdict
    retry_at: datetime | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff before the next attempt, and how many attempts a delivery gets.

    The delay after attempt n (1-based) is ``raw = min(cap, base * 2**(n-1))``
    with equal jitter: uniformly within ``[raw/2, raw]``; a ``Retry-After``
    raises it (never lowers it), itself capped at ``cap``.
    """

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if self.base <= timedelta(0) or self.cap < self.base or self.max_attempts < 1:
            raise ValueError("a retry policy needs 0 < base <= cap and at least one attempt")

    def delay(
        self, attempt: int, rng: random.Random, retry_after: float | None = None
    ) -> timedelta:
        raw = self._raw(attempt)
        delay = raw / 2 + raw / 2 * rng.random()
        if retry_after is not None and math.isfinite(retry_after):
            asked = timedelta(seconds=min(self.cap.total_seconds(), max(0.0, retry_after)))
            delay = max(delay, asked)
        return delay

    def _raw(self, attempt: int) -> timedelta:
        """``min(cap, base * 2**(attempt-1))``, in floats (no overflow for any attempt)."""
        exponent = min(max(0, attempt - 1), 1000)
        seconds = min(self.cap.total_seconds(), self.base.total_seconds() * 2.0**exponent)
        return timedelta(seconds=seconds)

    def exhausted(self, attempts: int) -> bool:
        """Whether a delivery that made `attempts` attempts may make no other."""
        return attempts >= self.max_attempts

    def decide(
        self,
        outcome: Outcome,
        attempts: int,
        *,
        now: datetime,
        rng: random.Random,
        retry_after: float | None = None,
    ) -> Decision:
        """The state after attempt number `attempts` ended with `outcome`."""
        if outcome == "sent":
            return Decision("sent")
        if outcome == "retry" and not self.exhausted(attempts):
            return Decision("retry", now + self.delay(attempts, rng, retry_after))
        return Decision("failed_permanent")

    def shortest_span(self) -> timedelta:
        """The least time from the first attempt to the last (every jitter at its low end)."""
        total = timedelta(0)
        for attempt in range(1, self.max_attempts):
            total += self._raw(attempt) / 2
        return total


@dataclass(frozen=True)
class Lease:
    """How long a claim holds a row; a send must end well inside it (half at most),
    or another worker would claim and send it again meanwhile."""

    duration: timedelta

    def until(self, now: datetime) -> datetime:
        return now + self.duration

    def expired(self, lease_until: datetime | None, now: datetime) -> bool:
        """Whether a row leased until `lease_until` may be claimed again at `now`."""
        return lease_until is None or lease_until <= now

    def send_deadline(self, wanted: float | None, default: float) -> float:
        """The send deadline in seconds: `wanted`, or `default` within a third of the lease;
        refused unless the lease covers it twice over."""
        seconds = min(default, self.duration.total_seconds() / 3) if wanted is None else wanted
        if not 0 < seconds <= self.duration.total_seconds() / 2:
            raise ValueError("the lease must cover the send deadline twice over")
        return seconds
