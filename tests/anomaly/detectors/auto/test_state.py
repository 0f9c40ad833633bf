"""``auto``'s state: plain JSON, and a round trip anywhere changes no later score."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.anomaly.detectors.auto import AutoDetector

from ..helpers import assert_scores_identical, concat
from .series import DAY, FIVE_MINUTES, stamps


def series(n: int = 3000):
    rng = np.random.default_rng(31)
    ts = stamps(n, FIVE_MINUTES, jitter=30.0, seed=31)
    values = 50.0 + 10.0 * np.sin(2 * np.pi * ts / DAY) + rng.normal(0.0, 1.0, n)
    values[[400, 1200, 1210, 2500]] += [40.0, 25.0, 30.0, 20.0]
    return ts, values


def test_state_is_plain_json() -> None:
    ts, values = series()
    detector = AutoDetector()
    json.dumps(detector.get_state(), allow_nan=False)
    detector.score(ts, values)
    text = json.dumps(detector.get_state(), allow_nan=False)
    assert json.loads(text) == detector.get_state()


# 5, 10-20: the cadence being learned; 100 and 300: before and after a full local
# window (72 points at five minutes); 1205: inside the refractory of an alert
@pytest.mark.parametrize("cut", [1, 5, 10, 15, 16, 17, 20, 100, 300, 1205, 2000])
def test_a_round_trip_changes_no_later_score(cut: int) -> None:
    ts, values = series()
    whole = AutoDetector().score(ts, values)
    first = AutoDetector()
    head = first.score(ts[:cut], values[:cut])
    saved = json.loads(json.dumps(first.get_state(), allow_nan=False))
    second = AutoDetector()
    second.set_state(saved)
    assert second.n_seen == cut
    assert second.is_learning == first.is_learning
    assert second.is_warm == first.is_warm
    tail = second.score(ts[cut:], values[cut:])
    assert_scores_identical(concat([head, tail]), whole)
