"""The seasonal channel of ``auto``: its gate and the slots the cadence sets."""

from __future__ import annotations

import numpy as np

from services.anomaly.detectors.auto import AutoDetector
from services.anomaly.detectors.auto.season import seasonal_gate as _seasonal_gate


def test_seasonal_gate() -> None:
    # full weight when the seasonal changes span at most half the values' range, none at equal
    ratios = np.array([0.1, 0.5, 0.75, 1.0, 2.0])
    np.testing.assert_allclose(_seasonal_gate(ratios, np.ones(5)), [1.0, 1.0, 0.5, 0.0, 0.0])
    assert _seasonal_gate(np.array([1.0]), np.array([0.0]))[0] == 0.0  # flat history


def test_cadence_sets_the_seasonal_slots() -> None:
    minute = AutoDetector()
    minute.score(1_790_000_000.0 + 60.0 * np.arange(40), np.ones(40))
    assert len(minute.get_state()["slots"][0]) == 1440
    hourly = AutoDetector()
    hourly.score(1_790_000_000.0 + 3600.0 * np.arange(40), np.ones(40))
    assert len(hourly.get_state()["slots"][0]) == 24
    daily = AutoDetector()  # one point a day: no daily season to compare with
    daily.score(1_790_000_000.0 + 86400.0 * np.arange(40), np.ones(40))
    assert daily.get_state()["slots"][0] == []
