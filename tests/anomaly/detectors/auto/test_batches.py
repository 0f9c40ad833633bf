"""``auto``'s batches: one compiled loop, so any batching gives the same numbers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from services.anomaly.detectors.auto import AutoDetector

from ..helpers import assert_scores_identical, concat, stack
from .series import DAY, stamps


def seasonal_series(n: int, cadence: float, *, jitter: float = 0.0, seed: int = 1):
    rng = np.random.default_rng(seed)
    ts = stamps(n, cadence, jitter=jitter, seed=seed)
    values = 100.0 + 30.0 * np.sin(2 * np.pi * ts / DAY) + rng.normal(0.0, 3.0, n)
    values[rng.choice(n, 15, replace=False)] += 50.0
    values[n // 2 : n // 2 + 200] += 15.0  # a level shift
    return ts, values


def in_batches(ts: np.ndarray, values: np.ndarray, size: int, **params):
    detector = AutoDetector(**params)
    parts = [
        detector.score(ts[i : i + size], values[i : i + size]) for i in range(0, len(ts), size)
    ]
    return concat(parts), detector.get_state()


@pytest.mark.parametrize(
    ("cadence", "jitter"),
    [(300.0, 0.0), (300.0, 60.0), (60.0, 0.0), (7.0, 0.0), (3600.0, 0.0)],
)
def test_batch_sizes_give_the_same_scores(cadence: float, jitter: float) -> None:
    ts, values = seasonal_series(4000, cadence, jitter=jitter)
    whole, state = in_batches(ts, values, 4000)
    assert (whole.score > 0.0).any()
    detector = AutoDetector()
    points = stack(
        [detector.score_one(t, v) for t, v in zip(ts.tolist(), values.tolist(), strict=True)]
    )
    assert_scores_identical(points, whole)
    assert detector.get_state() == state
    for size in (7, 100, 1000, 2500):
        scores, other = in_batches(ts, values, size)
        assert_scores_identical(scores, whole)
        assert other == state


def test_scoring_without_learning_leaves_the_state_alone() -> None:
    ts, values = seasonal_series(2000, 300.0)
    detector = AutoDetector()
    detector.score(ts[:1500], values[:1500])
    before = detector.get_state()
    peek = detector.score(ts[1500:], values[1500:], learn=False)
    assert detector.get_state() == before
    # each point is scored as the next one: the first agrees with learning it
    learned = detector.score(ts[1500:1501], values[1500:1501])
    assert peek.score[0] == learned.score[0]


def test_returned_arrays_are_not_reused() -> None:
    ts, values = seasonal_series(3000, 300.0)
    detector = AutoDetector()
    detector.score(ts[:1000], values[:1000])
    first = detector.score(ts[1000:2000], values[1000:2000])
    fields = ("score", "expected", "lower", "upper", "detail", "learning")
    kept = [getattr(first, f).copy() for f in fields]
    detector.score(ts[2000:3000], values[2000:3000])
    for before, field in zip(kept, fields, strict=True):
        np.testing.assert_array_equal(before, getattr(first, field))


def test_threads_give_the_same_scores() -> None:
    ts, values = seasonal_series(6000, 300.0)
    expected, _ = in_batches(ts, values, 1000)
    results: list = [None] * 4

    def run(i: int) -> None:
        results[i] = in_batches(ts, values, 1000)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        assert_scores_identical(result, expected)
