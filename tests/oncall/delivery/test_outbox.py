"""The outbox's retry policy: exponential backoff, capped, jittered by the given RNG."""

from __future__ import annotations

import random
from datetime import timedelta

from services.oncall.delivery.outbox import RetryPolicy


def test_backoff_is_exponential_capped_and_jittered_by_the_given_rng() -> None:
    retry = RetryPolicy(base=timedelta(seconds=30), cap=timedelta(minutes=10))
    a = [retry.delay(n, random.Random(3)) for n in range(1, 8)]
    b = [retry.delay(n, random.Random(3)) for n in range(1, 8)]
    assert a == b  # the injected RNG decides the jitter
    for n, delay in enumerate(a, start=1):
        raw = min(timedelta(minutes=10), timedelta(seconds=30 * 2 ** (n - 1)))
        assert raw / 2 <= delay <= raw
    assert retry.delay(1, random.Random(0), retry_after=120) >= timedelta(seconds=120)
