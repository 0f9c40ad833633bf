"""Behaviour of ``auto`` as a whole: the registry, its channels, learning, the score
map and its explanations (the contract suite covers the shared interface)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.anomaly.detectors import InvalidParams, PointScore, create
from services.anomaly.detectors.auto import ALERT_EXCESS, CHANNELS, AutoDetector
from services.anomaly.detectors.auto.detector import SURPRISE_PER_EXCESS, excess_of_score
from services.anomaly.detectors.auto.layout import S
from services.anomaly.detectors.auto.params import MIN_POINTS
from services.anomaly.detectors.scores import KNEE_P, score_from_surprise

from .series import DAY, FIVE_MINUTES, HOUR, MINUTE, alert_rate, channel, run, stamps, white

DAY_POINTS = 288  # at five minutes


def test_is_the_registered_default() -> None:
    detector = create("auto")
    assert isinstance(detector, AutoDetector)
    assert detector.warmup == MIN_POINTS
    assert not detector.is_warm
    assert detector.is_learning


def test_invalid_params_are_refused() -> None:
    for params in (
        {"warmup": 100},  # lengths are durations now: the point-count names are gone
        {"forget": 3000},
        {"refractory": 50},
        {"warmup_seconds": -1.0},
        {"forget_seconds": 0.0},
        {"local_seconds": 0.0},
        {"mean_weight": 2.0},
        {"refractory_factor": 1.5},
        {"mean_window": 1},
        {"calibration_quantile": 1.0},
        {"season_seconds": math.inf},
    ):
        with pytest.raises(InvalidParams):
            create("auto", params)


# -- channels ----------------------------------------------------------------------
def test_spike_is_found_by_the_level_channel() -> None:
    n = 3000
    values = white(n, level=50.0, sigma=2.0, seed=11)
    values[2500] = 75.0  # 12.5 standard deviations
    detector, scores = run(stamps(n), values)
    assert scores.score[2500] > 0.999
    assert channel(scores.detail[2500]) == "level"
    text = detector.explain(75.0, scores.point(2500))
    assert text.startswith("auto (level): value 75 breaks the range")
    # quiet before it: well under one alert per 500 normal points
    assert alert_rate(scores.score[DAY_POINTS:2500]) < 0.002


@pytest.mark.xfail(strict=False, reason="at 0c14118 a 3-sigma shift scored 0.897 in 2.5 hours")
def test_level_shift_is_found_soon_after_it_starts() -> None:
    n = 6000
    values = white(n, level=50.0, sigma=2.0, seed=7)
    values[5000:] += 6.0  # three standard deviations
    _, scores = run(stamps(n), values)
    assert scores.score[5000:5030].max() >= 0.99  # within two and a half hours
    assert alert_rate(scores.score[DAY_POINTS:5000]) < 0.002


def test_seasonal_break_is_found_by_the_seasonal_channel() -> None:
    rng = np.random.default_rng(3)
    n = DAY_POINTS * 12
    ts = stamps(n, jitter=10.0)
    daily = 50.0 + 20.0 * np.sin(2 * np.pi * ts / DAY)
    values = daily + rng.normal(0.0, 1.0, n)
    at = DAY_POINTS * 10 + 100
    # half a day out of phase: every value stays inside the daily range
    values[at : at + 100] = np.roll(daily, DAY_POINTS // 2)[at : at + 100]
    detector, scores = run(ts, values)
    hit = at + int(np.argmax(scores.score[at : at + 30]))
    assert scores.score[hit] >= 0.99
    assert channel(scores.detail[hit]) == "seasonal"
    assert "same time one season ago" in detector.explain(float(values[hit]), scores.point(hit))
    # without the seasonal channel the break is weaker
    _, flat = run(ts, values, season_seconds=0.0)
    assert flat.score[at : at + 30].max() < scores.score[hit]


def test_normal_series_rarely_alert() -> None:
    rng = np.random.default_rng(5)
    n = DAY_POINTS * 10
    ts = stamps(n, jitter=20.0)
    cases = {
        "white noise": 10.0 + rng.normal(0.0, 1.0, n),
        "daily cycle": 50.0 + 20.0 * np.sin(2 * np.pi * ts / DAY) + rng.normal(0.0, 2.0, n),
        "sparse counts": rng.poisson(0.3, n).astype(float),
        "heavy tails": rng.standard_t(3, n),
        "slow trend": 0.001 * np.arange(n) + rng.normal(0.0, 1.0, n),
        "quantised": np.round(100.0 + rng.normal(0.0, 0.4, n)),
    }
    for name, values in cases.items():
        _, scores = run(ts, values)
        rate = alert_rate(scores.score[DAY_POINTS:])
        assert rate < 0.005, f"{name}: {rate:.2%} of normal points alert"


# -- learning ----------------------------------------------------------------------
@pytest.mark.parametrize("cadence", [MINUTE, FIVE_MINUTES, HOUR])
def test_learning_lasts_the_first_season_in_time(cadence: float) -> None:
    n = int(2 * DAY / cadence)
    ts = stamps(n, cadence)
    values = white(n, seed=2)
    detector = AutoDetector()
    elapsed = ts - ts[0]
    first_day = elapsed < DAY
    half = int(np.searchsorted(elapsed, 0.5 * DAY))
    scores = detector.score(ts[:half], values[:half])
    assert scores.learning is not None and scores.learning.all()
    assert detector.is_learning
    rest = detector.score(ts[half:], values[half:])
    learning = np.concatenate([scores.learning, rest.learning])
    np.testing.assert_array_equal(learning, first_day)
    assert not detector.is_learning
    assert detector.is_warm


def test_no_score_before_warm_and_the_explanation_says_learning() -> None:
    detector = AutoDetector()
    ts = stamps(40, HOUR)
    scores = detector.score(ts, white(40, seed=4) + np.where(np.arange(40) == 10, 50.0, 0.0))
    # the warm-up is 20 points and 6 hours: nothing scores before point 20
    assert (scores.score[:MIN_POINTS] == 0.0).all()
    assert np.isnan(scores.upper[:MIN_POINTS]).all()
    assert not np.isnan(scores.upper[MIN_POINTS:]).any()
    text = detector.explain(20.0, scores.point(0))
    assert text.startswith("auto: still learning")
    assert f"{MIN_POINTS} points" in text and "6 hours" in text


# -- the score map -----------------------------------------------------------------
def score_of_excess(excess: np.ndarray | float) -> np.ndarray:
    return score_from_surprise(np.atleast_1d(np.asarray(excess, dtype=float)) * SURPRISE_PER_EXCESS)


def test_score_is_the_alert_level_exactly_at_the_alert_excess() -> None:
    assert score_of_excess(ALERT_EXCESS)[0] == pytest.approx(0.99, abs=1e-12)
    assert score_of_excess(0.0)[0] == 0.0
    assert score_of_excess(0.99 * ALERT_EXCESS)[0] < 0.99 < score_of_excess(1.01 * ALERT_EXCESS)[0]


def test_score_map_ranks_and_never_saturates() -> None:
    excess = np.concatenate([np.linspace(0.01, 5.0, 500), np.logspace(0.7, 300, 500)])
    scores = score_of_excess(excess)
    assert (np.diff(scores) > 0.0).all()
    assert (scores < 1.0).all()
    # beyond the knee (score 1 - KNEE_P) it keeps ranking very large excesses
    assert (scores[-300:] > 1.0 - KNEE_P).all()


@pytest.mark.parametrize("excess", [0.05, 0.3, ALERT_EXCESS, 0.9, 1.5, 4.0, 30.0, 1e3])
def test_excess_of_score_inverts_the_map(excess: float) -> None:
    score = float(score_of_excess(excess)[0])
    assert excess_of_score(score) == pytest.approx(excess, rel=1e-6)


def test_excess_of_score_of_zero_is_zero() -> None:
    assert excess_of_score(0.0) == 0.0


# -- explanations ------------------------------------------------------------------
@pytest.mark.parametrize("code", range(1, len(CHANNELS)))
def test_explain_names_each_channel(code: int) -> None:
    detector = AutoDetector()
    excess = 2.0
    point = PointScore(
        score=float(score_of_excess(excess)[0]),
        expected=10.0,
        lower=8.0,
        upper=12.0,
        detail=float(code),
    )
    text = detector.explain(30.0, point)
    assert text.startswith(f"auto ({CHANNELS[code]}): ")
    assert "by 2 noise units" in text
    assert "normal 8–12" in text


def test_explain_within_range_names_no_channel() -> None:
    detector = AutoDetector()
    point = PointScore(score=0.0, expected=10.0, lower=8.0, upper=12.0, detail=0.0)
    text = detector.explain(10.5, point)
    assert text.startswith("auto: value 10.5 is within")
    assert not any(f"({name})" in text for name in CHANNELS)


@pytest.mark.parametrize("cadence", [MINUTE, FIVE_MINUTES, HOUR])
def test_a_slot_never_written_is_no_seasonal_reference(cadence: float) -> None:
    # Day-over-day changes of a clean daily cycle are a few noise units; a slot
    # not yet written (the empty table) must never serve as last season's value,
    # or one change the size of the whole level would widen the seasonal range.
    n = int(2.5 * DAY / cadence)
    ts = stamps(n, cadence)
    values = 500.0 + 20.0 * np.sin(2 * np.pi * ts / DAY) + white(n, level=0.0, seed=2)
    detector, _ = run(ts, values)
    state = detector.get_state()["scalars"]
    assert state[S["resid_count"]] > 0
    assert abs(state[S["resid_lo"]]) < 20.0
    assert abs(state[S["resid_hi"]]) < 20.0
