"""Each detector on the pattern it claims to catch (fixed seeds).

The anomaly must score above 0.99 at or soon after the event, and the normal
part must stay mostly below 0.9 (scores are calibrated tail probabilities, so
about 10 % of normal points exceed 0.9 by design; a few exceed 0.99).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from services.anomaly.detectors import create

MINUTE = 60.0
HOUR = 3600.0


def assert_quiet(scores: np.ndarray) -> None:
    """Normal stretch: mostly below 0.9, rarely above 0.99."""
    assert scores.size > 50
    assert np.mean(scores < 0.9) >= 0.8, np.mean(scores < 0.9)
    assert np.mean(scores > 0.99) <= 0.03, np.mean(scores > 0.99)


def run(algorithm: str, params: dict[str, Any], timestamps: np.ndarray, values: np.ndarray):
    return create(algorithm, params).score(timestamps, values)


# -- spikes ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def spike_series() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(101)
    values = rng.normal(50.0, 3.0, 700)
    values[500] += 30.0  # ten standard deviations
    values[620] -= 24.0
    return np.arange(700) * MINUTE, values


@pytest.mark.parametrize(
    ("algorithm", "params"),
    [("ewma", {}), ("mad", {}), ("iqr", {}), ("static", {"lower": 30.0, "upper": 70.0})],
)
def test_spikes_and_dips(
    algorithm: str, params: dict[str, Any], spike_series: tuple[np.ndarray, np.ndarray]
) -> None:
    timestamps, values = spike_series
    scores = run(algorithm, params, timestamps, values)
    assert scores.score[500] > 0.99
    assert scores.score[620] > 0.99
    assert scores.upper[500] < values[500]
    assert scores.lower[620] > values[620]
    normal = np.ones(values.size, dtype=bool)
    normal[:100] = False  # warm-up
    normal[[500, 620]] = False
    assert_quiet(scores.score[normal])


def test_mad_is_not_masked_by_a_burst_of_spikes() -> None:
    rng = np.random.default_rng(102)
    values = rng.normal(10.0, 1.0, 400)
    values[300:306] += 12.0  # a burst: a mean/std model would absorb it
    scores = run("mad", {}, np.arange(400.0), values)
    assert np.all(scores.score[300:306] > 0.99)


def test_mad_on_sparse_counts_does_not_flag_the_usual_ones() -> None:
    rng = np.random.default_rng(103)
    counts = rng.poisson(0.2, 2000).astype(float)  # mostly 0, MAD = 0
    counts[1500] = 9.0
    scores = run("mad", {}, np.arange(2000.0), counts)
    assert scores.score[1500] > 0.999
    ones = np.flatnonzero(counts[100:1500] == 1.0) + 100  # 16 % of points
    assert np.median(scores.score[ones]) < 0.95
    assert np.mean(scores.score[ones] > 0.99) < 0.05


def test_iqr_band_is_asymmetric_on_skewed_data() -> None:
    rng = np.random.default_rng(104)
    latencies = rng.lognormal(4.0, 0.4, 1000)
    scores = run("iqr", {}, np.arange(1000.0), latencies)
    above = scores.upper[100:] - scores.expected[100:]
    below = scores.expected[100:] - scores.lower[100:]
    assert np.median(above / below) > 1.2
    # a slow request far in the long tail is flagged; the fast side stays bounded
    probe = create("iqr", {})
    probe.score(np.arange(1000.0), latencies)
    assert probe.score_one(1000.0, 400.0).score > 0.99
    assert probe.score_one(1000.0, 30.0).score < 0.99


def test_static_flags_only_beyond_its_bounds() -> None:
    values = np.array([10.0, 90.0, 90.5, 100.0, -1.0, 0.0])
    scores = run("static", {"lower": 0.0, "upper": 90.0}, np.arange(6.0), values)
    breached = np.array([False, False, True, True, True, False])
    assert np.all(scores.score[~breached] == 0.0)
    # any breach is critical (0.999 by default), never 1, and a larger one ranks higher
    assert np.all((scores.score[breached] >= 0.9999) & (scores.score[breached] < 1.0))
    assert scores.score[3] > scores.score[4] > scores.score[2]  # excess 10, 1, 0.5
    only_upper = run("static", {"upper": 90.0}, np.arange(6.0), values)
    assert np.flatnonzero(only_upper.score).tolist() == [2, 3]
    assert np.all(np.isnan(only_upper.lower))


# -- level shifts ----------------------------------------------------------------
@pytest.fixture(scope="module")
def shift_series() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(201)
    values = rng.normal(100.0, 2.0, 1200)
    values[500:] += 4.0  # two standard deviations: no single point stands out
    return np.arange(1200) * MINUTE, values


@pytest.mark.parametrize("algorithm", ["cusum", "level_shift"])
def test_level_shift_is_caught_soon(
    algorithm: str, shift_series: tuple[np.ndarray, np.ndarray]
) -> None:
    timestamps, values = shift_series
    scores = run(algorithm, {}, timestamps, values)
    assert scores.score[500:520].max() > 0.99
    assert_quiet(scores.score[100:500])
    # it settles on the new level instead of alarming for ever
    assert_quiet(scores.score[800:])


def test_point_detectors_miss_the_small_shift(shift_series: tuple[np.ndarray, np.ndarray]) -> None:
    timestamps, values = shift_series
    scores = run("ewma", {}, timestamps, values)
    assert np.mean(scores.score[500:520] > 0.99) < 0.3


def test_cusum_catches_a_downward_shift_and_reports_its_side() -> None:
    rng = np.random.default_rng(202)
    values = rng.normal(20.0, 1.0, 600)
    values[400:] -= 1.5
    detector = create("cusum", {})
    scores = detector.score(np.arange(600.0), values)
    first = 400 + int(np.argmax(scores.score[400:] > 0.99))
    assert first < 430
    assert scores.detail is not None and scores.detail[first] < 0
    assert "down" in detector.explain(float(values[first]), scores.point(first))


def test_level_shift_ignores_a_single_spike() -> None:
    rng = np.random.default_rng(203)
    values = rng.normal(5.0, 0.5, 300)
    values[200] = 50.0
    scores = run("level_shift", {}, np.arange(300.0), values)
    assert scores.score[200:210].max() < 0.9


# -- drift -------------------------------------------------------------------------
def test_drift_catches_a_slow_ramp_that_ewma_follows() -> None:
    rng = np.random.default_rng(301)
    values = rng.normal(0.0, 1.0, 800)
    values[500:] += 0.04 * np.arange(300)  # a leak: 0.04 sd per point
    timestamps = np.arange(800) * MINUTE
    drift = run("drift", {}, timestamps, values)
    assert drift.score[500:600].max() > 0.99
    assert drift.detail is not None and drift.detail[650] > 0
    assert_quiet(drift.score[60:500])
    ewma = run("ewma", {}, timestamps, values)
    assert np.mean(ewma.score[550:800] > 0.99) < 0.1


# -- seasonality -------------------------------------------------------------------
@pytest.fixture(scope="module")
def daily_series() -> tuple[np.ndarray, np.ndarray, int]:
    """Eight weeks of hourly traffic with a daily cycle and a slow rise; at one
    peak hour the value drops to a level that is normal at night."""
    rng = np.random.default_rng(401)
    steps = np.arange(24 * 7 * 8)
    timestamps = 1_790_000_000.0 - 1_790_000_000.0 % 86400 + steps * HOUR
    hour = steps % 24
    values = 200.0 + 0.02 * steps + 60.0 * np.sin(2 * np.pi * (hour - 6) / 24)
    values = values + rng.normal(0.0, 5.0, steps.size)
    event = 24 * 7 * 7 + 12  # noon, the daily peak, in week eight
    values[event] -= 70.0
    return timestamps, values, event


@pytest.mark.parametrize(
    ("algorithm", "params"),
    [
        ("seasonal", {}),
        ("seasonal", {"period_seconds": 86400.0, "warmup": 24 * 7}),
        ("seasonal", {"period_points": 24, "warmup": 24 * 7}),
        ("holt_winters", {}),
        ("holt_winters", {"period_points": 24, "warmup": 24 * 7}),
    ],
)
def test_seasonal_deviation(
    algorithm: str, params: dict[str, Any], daily_series: tuple[np.ndarray, np.ndarray, int]
) -> None:
    timestamps, values, event = daily_series
    detector = create(algorithm, params)
    scores = detector.score(timestamps, values)
    assert scores.score[event] > 0.99
    assert scores.lower[event] > values[event]
    normal = np.ones(values.size, dtype=bool)
    normal[: detector.warmup + 24 * 3] = False
    normal[event : event + 3] = False
    assert_quiet(scores.score[normal])
    # the dropped value is ordinary for the day as a whole
    assert values.min() < values[event] < values.max()


def test_seasonal_detects_the_daily_period(
    daily_series: tuple[np.ndarray, np.ndarray, int],
) -> None:
    timestamps, values, _ = daily_series
    detector = create("seasonal", {})
    detector.score(timestamps, values)
    state = detector.get_state()
    assert state["mode"] == "time"
    assert state["slots"] * state["slot_seconds"] == pytest.approx(86400.0)
    hw = create("holt_winters", {})
    hw.score(timestamps, values)
    assert hw.get_state()["period"] == 24


def test_seasonal_hour_of_week_tells_weekends_apart() -> None:
    rng = np.random.default_rng(402)
    steps = np.arange(24 * 7 * 6)
    # the epoch began on a Thursday: day index 2 and 3 of each week are Sat/Sun
    timestamps = steps * HOUR + 7 * 86400.0 * 2900
    weekday = (timestamps // 86400 + 4) % 7  # 0 = Monday
    weekend = weekday >= 5
    values = np.where(weekend, 20.0, 100.0) + rng.normal(0.0, 4.0, steps.size)
    saturday_noon = int(np.flatnonzero(weekend & (steps >= 24 * 7 * 5) & ((steps % 24) == 12))[0])
    values[saturday_noon] = 100.0  # a weekday level, on a Saturday
    scores = run("seasonal", {"period_seconds": 7 * 86400.0, "warmup": 24 * 7}, timestamps, values)
    assert scores.score[saturday_noon] > 0.999
    assert_quiet(scores.score[24 * 7 * 3 : saturday_noon])


def test_seasonal_without_a_season_is_a_plain_z_score() -> None:
    rng = np.random.default_rng(403)
    values = rng.normal(0.0, 1.0, 1500)
    values[1200] = 8.0
    detector = create("seasonal", {})
    scores = detector.score(np.arange(1500) * MINUTE, values)
    assert detector.get_state()["slots"] == 1
    assert scores.score[1200] > 0.999
    assert_quiet(scores.score[1000:1200])


# -- flatline ----------------------------------------------------------------------
def test_flatline_on_a_stuck_sensor() -> None:
    rng = np.random.default_rng(501)
    values = np.round(rng.normal(30.0, 2.0, 500), 1)
    values[330:360] = values[329]
    scores = run("flatline", {}, np.arange(500) * MINUTE, values)
    assert scores.score[330:336].max() > 0.99
    assert np.all(scores.score[340:360] > 0.999)
    assert scores.score[360] < 0.9  # moving again
    assert_quiet(scores.score[30:330])


def test_flatline_tolerates_the_repeats_a_count_usually_has() -> None:
    rng = np.random.default_rng(502)
    counts = rng.poisson(1.0, 3000).astype(float)  # repeats ~37 % of steps
    counts[2500:2530] = 0.0
    scores = run("flatline", {}, np.arange(3000.0), counts)
    assert_quiet(scores.score[100:2500])
    assert scores.score[2515:2530].min() > 0.999


def test_flatline_tolerance_treats_small_moves_as_flat() -> None:
    rng = np.random.default_rng(503)
    values = rng.normal(10.0, 1.0, 400)
    values[300:340] = 7.0 + rng.uniform(-0.01, 0.01, 40)
    strict = run("flatline", {}, np.arange(400.0), values)
    tolerant = run("flatline", {"tolerance": 0.05}, np.arange(400.0), values)
    assert strict.score[300:340].max() < 0.9
    assert tolerant.score[310:340].min() > 0.999


# -- volatility --------------------------------------------------------------------
def test_volatility_rise_and_fall() -> None:
    rng = np.random.default_rng(601)
    values = np.concatenate(
        [
            rng.normal(5.0, 0.5, 500),
            rng.normal(5.0, 2.0, 300),  # noisier
            rng.normal(5.0, 0.5, 300),
            rng.normal(5.0, 0.05, 300),  # suspiciously calm
        ]
    )
    scores = run("volatility", {}, np.arange(values.size) * MINUTE, values)
    assert scores.score[500:520].max() > 0.99
    assert scores.detail is not None and scores.detail[515] > 2
    assert scores.score[1100:1120].max() > 0.99
    assert scores.detail[1115] < 0.5
    assert_quiet(scores.score[140:500])
    assert_quiet(scores.score[1000:1100])


def test_volatility_ignores_a_level_shift() -> None:
    rng = np.random.default_rng(602)
    values = rng.normal(0.0, 1.0, 600)
    values[400:] += 3.0
    scores = run("volatility", {}, np.arange(600.0), values)
    # a three-sigma step adds about a quarter to the recent variance, no more
    assert scores.score[400:420].max() < 0.999


# -- gaps --------------------------------------------------------------------------
def test_gap_after_a_silent_collector() -> None:
    rng = np.random.default_rng(701)
    intervals = MINUTE + rng.normal(0.0, 1.0, 600)
    intervals[400] += 10 * MINUTE
    timestamps = 1_790_000_000.0 + np.cumsum(intervals)
    scores = run("gap", {}, timestamps, rng.normal(size=600))
    assert scores.score[400] > 0.999
    assert scores.detail is not None and scores.detail[400] == pytest.approx(11.0, rel=0.05)
    assert np.all(scores.score[401:] < 0.99)  # the cadence is not disturbed
    assert_quiet(scores.score[60:400])


def test_gap_one_missing_point_on_a_regular_series() -> None:
    timestamps = np.arange(300) * 300.0
    timestamps[200:] += 300.0  # exactly one point missing
    scores = run("gap", {}, timestamps, np.zeros(300))
    assert scores.score[200] > 0.999
    assert np.all(np.delete(scores.score, 200) == 0.0)


def test_gap_on_irregular_events_needs_a_long_silence() -> None:
    rng = np.random.default_rng(702)
    intervals = rng.exponential(30.0, 2000)  # Poisson arrivals, 30 s apart on average
    intervals[1500] = 30.0 * 60  # half an hour without an event
    timestamps = np.cumsum(intervals)
    scores = run("gap", {}, timestamps, np.zeros(2000))
    assert scores.score[1500] > 0.99
    assert_quiet(scores.score[100:1500])


def test_gap_refuses_to_learn_a_point_out_of_order() -> None:
    detector = create("gap", {})
    detector.score(np.arange(10.0), np.zeros(10))
    from services.anomaly.detectors import InvalidInput

    with pytest.raises(InvalidInput):
        detector.score_one(5.0, 0.0)
    assert detector.score_one(5.0, 0.0, learn=False).score == 0.0
