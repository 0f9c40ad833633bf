"""The outbox rules both deliveries share: outcomes, Retry-After, backoff, attempts, lease."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.anomaly.paging.sender import PAGE_RETRY
from services.common.outbox import (
    MAX_RETRY_AFTER_SECONDS,
    Decision,
    Lease,
    RetryPolicy,
    classify_status,
    parse_retry_after,
)
from services.oncall.delivery import outbox as oncall_outbox
from services.oncall.delivery.channels import classify

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (None, "retry"),  # connection error, timeout
        (200, "sent"),
        (201, "sent"),
        (299, "sent"),
        (301, "permanent"),  # redirects are not followed
        (400, "permanent"),
        (404, "permanent"),
        (408, "retry"),
        (409, "permanent"),
        (425, "permanent"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (599, "retry"),
    ],
)
def test_http_outcomes(status: int | None, outcome: str) -> None:
    assert classify_status(status) == outcome


@pytest.mark.parametrize(
    ("value", "date", "seconds"),
    [
        ("120", None, 120.0),
        (" 7 ", None, 7.0),
        ("1.5", None, 1.5),
        ("0", None, 0.0),
        ("99999999999", None, MAX_RETRY_AFTER_SECONDS),
        # an HTTP-date, from our clock when the answer has no Date
        ("Thu, 03 Dec 2026 12:01:30 GMT", None, 90.0),
        # ...and from the answer's Date when it has one (the clocks need not agree)
        ("Thu, 03 Dec 2026 12:01:30 GMT", "Thu, 03 Dec 2026 12:01:00 GMT", 30.0),
        ("Thu, 03 Dec 2026 12:01:30 GMT", "garbage", 90.0),
        ("Thu, 03 Dec 2026 11:00:00 GMT", None, 0.0),  # in the past: now
        ("Fri, 01 Jan 2100 00:00:00 GMT", None, MAX_RETRY_AFTER_SECONDS),
        (None, None, None),
        ("", None, None),
        ("-5", None, None),
        ("1e20", None, None),
        ("inf", None, None),
        ("nan", None, None),
        ("soon", None, None),
    ],
)
def test_retry_after(value: str | None, date: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW, date=date) == seconds


def test_retry_after_is_capped_by_the_caller() -> None:
    assert parse_retry_after("600", now=NOW, cap=300.0) == 300.0


def test_the_oncall_channels_classify_by_the_shared_rules() -> None:
    answer = httpx.Response(
        503,
        headers={
            "Retry-After": "Thu, 03 Dec 2026 12:02:00 GMT",
            "Date": "Thu, 03 Dec 2026 12:00:00 GMT",
        },
    )
    result = classify(answer, now=lambda: NOW - timedelta(hours=5))  # Date wins
    assert (result.outcome, result.status_code, result.retry_after) == ("retry", 503, 120.0)
    assert classify(httpx.Response(425)).outcome == "permanent"


def test_backoff_is_exponential_capped_and_jittered_by_the_given_rng() -> None:
    retry = RetryPolicy(base=timedelta(seconds=30), cap=timedelta(minutes=10))
    a = [retry.delay(n, random.Random(3)) for n in range(1, 12)]
    assert a == [retry.delay(n, random.Random(3)) for n in range(1, 12)]
    for n, delay in enumerate(a, start=1):
        raw = min(timedelta(minutes=10), timedelta(seconds=30 * 2 ** (n - 1)))
        assert raw / 2 <= delay <= raw
    assert retry.delay(10_000, random.Random(1)) <= retry.cap  # no overflow
    # Retry-After raises the delay, never lowers it, and never beyond the cap
    assert retry.delay(1, random.Random(0), 120) == timedelta(seconds=120)
    assert retry.delay(1, random.Random(0), 86400) == retry.cap
    assert retry.delay(6, random.Random(0), 1) >= timedelta(minutes=5)


def test_decide_follows_the_outcome_and_the_attempt_limit() -> None:
    retry = RetryPolicy(base=timedelta(seconds=10), cap=timedelta(seconds=40), max_attempts=3)
    rng = random.Random(5)
    assert retry.decide("sent", 3, now=NOW, rng=rng) == Decision("sent")
    assert retry.decide("permanent", 1, now=NOW, rng=rng) == Decision("failed_permanent")
    again = retry.decide("retry", 2, now=NOW, rng=rng, retry_after=30)
    assert again == Decision("retry", NOW + timedelta(seconds=30))
    assert retry.decide("retry", 3, now=NOW, rng=rng) == Decision("failed_permanent")
    assert [retry.exhausted(n) for n in (0, 2, 3, 4)] == [False, False, True, True]


def test_policies_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base=timedelta(seconds=10), cap=timedelta(seconds=5))


def test_lease_arithmetic() -> None:
    lease = Lease(timedelta(minutes=2))
    assert lease.until(NOW) == NOW + timedelta(minutes=2)
    assert lease.expired(None, NOW)
    assert not lease.expired(lease.until(NOW), NOW + timedelta(seconds=119))
    assert lease.expired(lease.until(NOW), NOW + timedelta(minutes=2))
    assert lease.send_deadline(None, 30.0) == 30.0
    assert Lease(timedelta(seconds=30)).send_deadline(None, 30.0) == 10.0
    assert lease.send_deadline(60.0, 30.0) == 60.0
    with pytest.raises(ValueError):
        lease.send_deadline(61.0, 30.0)


def test_one_policy_class_for_both_services() -> None:
    assert oncall_outbox.RetryPolicy is RetryPolicy
    assert isinstance(PAGE_RETRY, RetryPolicy)
    # a page is retried for at least a day before it can fail for good
    assert PAGE_RETRY.shortest_span() >= timedelta(hours=24)
    assert RetryPolicy().max_attempts == 8  # on-call's notifications: 8 attempts
