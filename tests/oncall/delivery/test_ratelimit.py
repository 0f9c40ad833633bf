"""The per-destination token bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.oncall.delivery.ratelimit import Limit, take

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_token_bucket() -> None:
    limit = Limit(max=2, per_seconds=60)
    first = take(limit, None, None, T0)
    second = take(limit, first.tokens, first.updated_at, T0)
    third = take(limit, second.tokens, second.updated_at, T0)
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert third.wait == timedelta(seconds=30)
    later = take(limit, third.tokens, third.updated_at, T0 + timedelta(seconds=30))
    assert later.allowed
    assert Limit.of("email", None) == Limit(10, 600)
    assert Limit.of("webhook", {"max": 5, "per_seconds": 1}) == Limit(5, 1)
