"""Behaviour of the ``auto`` default ensemble (the shared contract suite covers the interface)."""

from __future__ import annotations

import numpy as np
import pytest

from services.anomaly.detectors import create
from services.anomaly.detectors.auto import CHANNELS, EXCESS_AT_ALERT, AutoDetector

FIVE_MINUTES = 300.0
DAY_POINTS = 288


def stamps(n: int, *, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 1_790_000_000.0 + np.cumsum(FIVE_MINUTES + rng.normal(0.0, jitter, n))


def channel(detail: float) -> str:
    return CHANNELS[int(detail)]


def test_is_the_registered_default() -> None:
    detector = create("auto")
    assert isinstance(detector, AutoDetector)
    assert detector.warmup == 100


def test_alert_level_is_half_a_noise_unit_past_the_range() -> None:
    # score = 1 - 0.01 ** (excess / 0.5): the default threshold 0.99 at an excess of 0.5
    rng = np.random.default_rng(1)
    values = 10.0 + rng.normal(0.0, 1.0, 400)
    detector = AutoDetector(refractory=0)
    detector.score(stamps(400), values)
    state = detector.get_state()
    hi, noise = state["level"][1], state["noise"][0]
    point = detector.score_one(2e9, hi + EXCESS_AT_ALERT * noise, learn=False)
    assert point.score == pytest.approx(0.99, abs=1e-9)
    assert point.upper == pytest.approx(hi + EXCESS_AT_ALERT * noise)
    assert detector.score_one(2e9, hi, learn=False).score == 0.0


def test_spike_is_found_by_the_level_channel() -> None:
    rng = np.random.default_rng(11)
    values = 50.0 + rng.normal(0.0, 2.0, 3000)
    values[2500] = 75.0
    detector = AutoDetector()
    scores = detector.score(stamps(3000), values)
    assert scores.score[2500] > 0.999
    assert channel(scores.detail[2500]) == "level"
    text = detector.explain(75.0, scores.point(2500))
    assert text.startswith("auto (level): value 75 breaks the range")
    # quiet before it: well under one alert per 500 normal points
    assert np.mean(scores.score[100:2500] >= 0.99) < 0.002


def test_level_shift_is_found_soon_after_it_starts() -> None:
    rng = np.random.default_rng(7)
    values = 50.0 + rng.normal(0.0, 2.0, 6000)
    values[5000:] += 6.0  # three standard deviations
    scores = AutoDetector().score(stamps(6000), values).score
    assert scores[5000:5030].max() >= 0.99


def test_seasonal_break_is_found_by_the_seasonal_channel() -> None:
    rng = np.random.default_rng(3)
    n = DAY_POINTS * 20
    ts = stamps(n, jitter=10.0)
    daily = 50.0 + 20.0 * np.sin(2 * np.pi * ts / 86400.0)
    values = daily + rng.normal(0.0, 1.0, n)
    at = DAY_POINTS * 18 + 100
    values[at : at + 100] = np.roll(daily, DAY_POINTS // 2)[
        at : at + 100
    ]  # half a day out of phase
    detector = AutoDetector()
    scores = detector.score(ts, values)
    hit = at + int(np.argmax(scores.score[at : at + 30]))
    assert scores.score[hit] >= 0.99
    assert channel(scores.detail[hit]) == "seasonal"
    assert "same time one season ago" in detector.explain(float(values[hit]), scores.point(hit))
    # the same break inside the daily range: invisible without the seasonal channel
    flat = AutoDetector(season_seconds=0.0).score(ts, values).score
    assert flat[at : at + 30].max() < scores.score[hit]


def test_normal_series_rarely_alert() -> None:
    rng = np.random.default_rng(5)
    n = 8000
    ts = stamps(n)
    cases = {
        "white noise": 10.0 + rng.normal(0.0, 1.0, n),
        "daily cycle": 50.0 + 20.0 * np.sin(2 * np.pi * ts / 86400.0) + rng.normal(0.0, 2.0, n),
        "sparse counts": rng.poisson(0.3, n).astype(float),
        "heavy tails": rng.standard_t(3, n),
        "slow trend": 0.001 * np.arange(n) + rng.normal(0.0, 1.0, n),
    }
    for name, values in cases.items():
        scores = AutoDetector().score(ts, values).score
        rate = float(np.mean(scores[1000:] >= 0.99))
        assert rate < 0.01, f"{name}: {rate:.2%} of normal points alert"


def test_an_old_huge_extreme_does_not_mask_later_spikes() -> None:
    rng = np.random.default_rng(13)
    values = 20.0 + rng.normal(0.0, 1.0, 4000)
    values[500] = 200.0  # an outage long ago
    values[3500] = 30.0  # ten standard deviations, far inside the old extreme
    detector = AutoDetector()
    scores = detector.score(stamps(4000), values)
    assert scores.score[3500] >= 0.99
    assert channel(scores.detail[3500]) == "recent"
    text = detector.explain(30.0, scores.point(3500))
    assert text.startswith("auto (recent): value 30 is outside the range of the latest 1000")


def test_repeats_right_after_an_alert_are_damped() -> None:
    rng = np.random.default_rng(9)
    values = 20.0 + rng.normal(0.0, 1.0, 2000)
    values[1500] = 30.0
    values[1510] = 30.5  # barely worse, ten points later: a repeat
    values[1520] = 40.0  # much worse: a new alert
    scores = AutoDetector().score(stamps(2000), values).score
    assert scores[1500] >= 0.99
    assert scores[1510] < 0.99
    assert scores[1520] >= 0.99
    undamped = AutoDetector(refractory=0).score(stamps(2000), values).score
    assert undamped[1510] > scores[1510]


def test_invalid_params_are_refused() -> None:
    from services.anomaly.detectors import InvalidParams

    for params in ({"warmup": 5}, {"mean_weight": 2.0}, {"recent": 3}, {"forget": 0}):
        with pytest.raises(InvalidParams):
            create("auto", params)
