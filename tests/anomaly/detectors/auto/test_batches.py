"""The ``auto`` detector's batch path: its shortcuts give the numbers of the general path.

The batch path takes shortcuts (a regular cadence, both noise units in their
steady regime, reused work arrays); these tests hold it to the point-by-point
path and to itself across batch shapes, cadences and threads.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from services.anomaly.detectors.auto import AutoDetector

from ..helpers import assert_scores_close, assert_scores_identical, concat, stack

START = 1_790_000_000.0


def seasonal_series(n: int, cadence: float, *, jitter: float = 0.0, seed: int = 1):
    rng = np.random.default_rng(seed)
    ts = START + np.cumsum(cadence + rng.uniform(-jitter, jitter, n))
    values = 100.0 + 30.0 * np.sin(2 * np.pi * ts / 86400.0) + rng.normal(0.0, 3.0, n)
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
    ts, values = seasonal_series(6000, cadence, jitter=jitter)
    whole, state = in_batches(ts, values, 6000)
    scale = float(np.abs(values).max())
    for size in (1, 7, 100, 1000, 2500):
        if size == 1:
            detector = AutoDetector()
            scores = stack(
                [
                    detector.score_one(t, v)
                    for t, v in zip(ts.tolist(), values.tolist(), strict=True)
                ]
            )
        else:
            scores, _ = in_batches(ts, values, size)
        assert_scores_close(scores, whole, scale=scale)


def test_returned_arrays_are_not_reused() -> None:
    ts, values = seasonal_series(3000, 300.0)
    detector = AutoDetector()
    detector.score(ts[:1000], values[:1000])
    first = detector.score(ts[1000:2000], values[1000:2000])
    kept = [a.copy() for a in (first.score, first.expected, first.lower, first.upper, first.detail)]
    detector.score(ts[2000:3000], values[2000:3000])
    for before, now in zip(
        kept, (first.score, first.expected, first.lower, first.upper, first.detail), strict=True
    ):
        np.testing.assert_array_equal(before, now)


def test_threads_do_not_share_work_arrays() -> None:
    ts, values = seasonal_series(8000, 300.0)
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


def test_long_batches_and_short_memory() -> None:
    # batches longer than one closed-form EWMA block (memory 10: ~284 points)
    ts, values = seasonal_series(3000, 300.0)
    whole, _ = in_batches(ts, values, 3000, memory=10, warmup=20)
    pieces, _ = in_batches(ts, values, 37, memory=10, warmup=20)
    assert_scores_close(pieces, whole, scale=float(np.abs(values).max()))


def test_a_flat_stretch_uses_the_exact_noise_floor() -> None:
    # a constant stretch drives the noise unit to its floor: the slower exact path
    ts = START + 60.0 * np.arange(4000)
    values = np.full(4000, 1e6)
    values[:1500] += np.random.default_rng(2).normal(0.0, 1.0, 1500)
    values[3500] += 1.0
    whole, _ = in_batches(ts, values, 4000)
    pieces, _ = in_batches(ts, values, 250)
    assert_scores_close(pieces, whole, scale=1e6)
    assert whole.score[3500] > 0.99
