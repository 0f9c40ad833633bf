"""The decimation of a series for charts: budget, anomalies and extremes kept."""

from __future__ import annotations

import numpy as np
import pytest

from services.anomaly.points.decimate import keep_indices


def test_small_series_kept_whole() -> None:
    values = np.arange(50.0)
    assert keep_indices(values, np.zeros(50, bool), 100).tolist() == list(range(50))


@pytest.mark.parametrize("n,max_points", [(10_080, 2000), (43_200, 500), (2001, 2000), (999, 10)])
def test_budget_anomalies_and_extremes(n: int, max_points: int) -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(100, 5, n)
    anomalous = np.zeros(n, bool)
    anomalous[rng.choice(n, 5, replace=False)] = True
    spike, dip = n // 3, 2 * n // 3
    values[spike], values[dip] = 1e6, -1e6  # extremes that are not anomalies
    kept = keep_indices(values, anomalous, max_points)
    assert kept.size <= max_points
    assert np.all(np.diff(kept) > 0)
    assert set(np.flatnonzero(anomalous)) <= set(kept.tolist())
    assert {spike, dip} <= set(kept.tolist())
    others = np.flatnonzero(~anomalous)
    assert {int(others[0]), int(others[-1])} <= set(kept.tolist())


def test_every_bucket_keeps_its_min_and_max() -> None:
    values = np.sin(np.linspace(0, 60, 20_000))
    kept = keep_indices(values, np.zeros(values.size, bool), 400)
    assert kept.size <= 400
    assert values[kept].max() == values.max() and values[kept].min() == values.min()


def test_more_anomalies_than_budget() -> None:
    anomalous = np.ones(100, bool)
    assert keep_indices(np.arange(100.0), anomalous, 10).tolist() == list(range(10))
