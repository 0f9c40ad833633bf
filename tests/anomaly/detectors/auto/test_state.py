"""The ``auto`` detector's streaming state: small, bounded whatever the cadence, exact.

The service loads and saves a detector's state on every ingest (as jsonb,
long float lists packed by ``statecodec``), so its size and conversion cost
are paid per request.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.anomaly.detectors.auto import AutoDetector
from services.anomaly.detectors.auto.season import MAX_SLOTS as _MAX_SLOTS
from services.anomaly.ingest import statecodec

from ..helpers import assert_scores_identical

START = 1_790_000_000.0
POINTS = 20_000
#: Plain JSON: the slot table (at most _MAX_SLOTS floats) and about a kilobyte more.
PLAIN_BOUND = 36_000
#: As the service stores it (float lists as base64): 8 bytes a slot and the rest.
PACKED_BOUND = 17_500


def series(cadence: float, n: int = POINTS, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A daily cycle with noise, spikes and a gap, at a given cadence (seconds)."""
    rng = np.random.default_rng(seed)
    steps = np.full(n, cadence)
    steps[n // 2] += 7 * 3600.0  # the collector was down for seven hours
    ts = START + np.cumsum(steps)
    values = 50.0 + 20.0 * np.sin(2 * np.pi * ts / 86400.0) + rng.normal(0.0, 2.0, n)
    values[rng.choice(n, 20, replace=False)] += 40.0
    return ts, values


def sizes(detector: AutoDetector) -> tuple[int, int]:
    state = detector.get_state()
    plain = json.dumps(state, allow_nan=False)
    packed = json.dumps(statecodec.pack(state), allow_nan=False)
    return len(plain), len(packed)


@pytest.mark.parametrize("cadence", [1.0, 60.0, 300.0])
def test_state_stays_under_a_bound_whatever_the_cadence(cadence: float) -> None:
    ts, values = series(cadence)
    detector = AutoDetector()
    for start in range(0, POINTS, 1000):
        detector.score(ts[start : start + 1000], values[start : start + 1000])
    state = detector.get_state()
    assert len(state["slots"][0]) <= _MAX_SLOTS
    plain, packed = sizes(detector)
    assert plain <= PLAIN_BOUND, plain
    assert packed <= PACKED_BOUND, packed
    if cadence == 300.0:
        # the typical case: 288 slots a day, about 4 KB as stored
        assert len(state["slots"][0]) == 288
        assert packed <= 4_500, packed
        assert plain <= 8_000, plain


def test_state_does_not_grow_with_the_series() -> None:
    ts, values = series(60.0, 3 * POINTS)
    detector = AutoDetector()
    detector.score(ts[:POINTS], values[:POINTS])
    first = sizes(detector)[1]
    detector.score(ts[POINTS:], values[POINTS:])
    assert sizes(detector)[1] <= first * 1.02


def test_finer_cadences_share_slots() -> None:
    # one point a second: 1440 slots of a minute, not 86,400
    ts, values = series(1.0, 5000)
    detector = AutoDetector()
    detector.score(ts, values)
    assert len(detector.get_state()["slots"][0]) == _MAX_SLOTS


@pytest.mark.parametrize("cadence", [1.0, 300.0])
def test_round_trip_through_the_stored_form_is_exact(cadence: float) -> None:
    # the gap leaves empty slots (stored as runs), the spikes leave recent alerts
    ts, values = series(cadence, 12_000)
    cut = 11_000
    original = AutoDetector()
    original.score(ts[:cut], values[:cut])
    stored = json.dumps(statecodec.pack(original.get_state()), allow_nan=False)
    restored = AutoDetector()
    restored.set_state(statecodec.unpack(json.loads(stored)))
    assert restored.get_state() == original.get_state()
    assert_scores_identical(
        restored.score(ts[cut:], values[cut:]), original.score(ts[cut:], values[cut:])
    )
    assert restored.get_state() == original.get_state()


def test_empty_slots_travel_as_runs() -> None:
    ts, values = series(300.0, 3000)
    detector = AutoDetector()
    detector.score(ts[:1510], values[:1510])  # just after the seven-hour gap
    slots, empty, _, _ = detector.get_state()["slots"]
    assert all(isinstance(v, float) for v in slots)  # no None in the long list
    assert empty and len(empty) % 2 == 0 and empty == sorted(empty)
    assert sum(b - a for a, b in zip(empty[0::2], empty[1::2], strict=True)) == 7 * 12
