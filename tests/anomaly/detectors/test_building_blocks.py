"""The shared numerical pieces, the registry, and the docstring examples."""

from __future__ import annotations

import doctest
import importlib
import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.anomaly.detectors import ALGORITHMS, InvalidParams, create
from services.anomaly.detectors._seasonality import detect_period, snap_lag
from services.anomaly.detectors.recursions import linear_recursion
from services.anomaly.detectors.robust import robust_sigma, sorted_quantile
from services.anomaly.detectors.scores import (
    KNEE_P,
    KNEE_SURPRISE,
    Z_BAND,
    erfc,
    score_from_p,
    score_from_surprise,
    two_sided_score,
    upper_score,
)
from services.anomaly.detectors.window import windows_ending_at

# the z at which the two-sided normal tail is KNEE_P (1e-4)
KNEE_Z = NormalDist().inv_cdf(1.0 - KNEE_P / 2.0)


# -- tail probabilities -------------------------------------------------------------
def test_erfc_matches_the_standard_library() -> None:
    x = np.linspace(-5.0, 12.0, 20001)
    reference = np.array([math.erfc(v) for v in x])
    np.testing.assert_allclose(erfc(x), reference, rtol=1.2e-7, atol=0)


def test_scores_are_monotone_in_surprise() -> None:
    z = np.linspace(0.0, 40.0, 400001)
    score = two_sided_score(z)
    assert np.all(np.diff(score) >= 0.0)
    assert score[0] == 0.0 and score[-1] < 1.0
    np.testing.assert_allclose(two_sided_score(-z), score)


def test_the_tail_ranks_and_never_reaches_one() -> None:
    # strictly increasing from the knee to 10^9 standard deviations, in steps of 0.01 %
    z = np.exp(np.arange(math.log(KNEE_Z), math.log(1e9), 1e-4))
    score = two_sided_score(z)
    assert np.all(np.diff(score) > 0.0)
    # and distinct, below 1, for any z a float can hold (and infinity)
    far = two_sided_score(np.array([1e3, 1e6, 1e12, 1e100, 1e154, 1e200, 1e308, math.inf]))
    assert np.all(np.diff(far) > 0.0) and far[-1] < 1.0
    assert 1.0 - far[-1] > 3e-14
    # the surprise map: same knee, same cap
    surprise = np.concatenate(([0.0, 1.0, KNEE_SURPRISE], np.logspace(1.0, 300.0, 3000)))
    scores = score_from_surprise(np.append(surprise, math.inf))
    assert np.all(np.diff(scores) > 0.0) and scores[-1] < 1.0
    assert scores[-1] == pytest.approx(far[-1], abs=1e-15)


def test_the_map_is_continuous_at_the_knee_and_unchanged_below_it() -> None:
    eps = 1e-9
    around = two_sided_score(np.array([KNEE_Z - eps, KNEE_Z + eps]))
    assert around[1] > around[0]
    # 1e-10: the erfc fit's own error (relative 1e-7 of p = 1e-4)
    assert around == pytest.approx([1.0 - KNEE_P, 1.0 - KNEE_P], abs=1e-10)
    switch = np.linspace(KNEE_Z - 1e-6, KNEE_Z + 1e-6, 20001)  # where the fit crosses 1e-4
    assert np.all(np.diff(two_sided_score(switch)) >= 0.0)
    knee = score_from_surprise(np.array([KNEE_SURPRISE - eps, KNEE_SURPRISE + eps]))
    assert knee[1] > knee[0] and knee == pytest.approx([0.9999, 0.9999], abs=1e-12)
    # below the knee a score is the plain tail: 1 - erfc(|z| / sqrt 2)
    z = np.linspace(0.0, KNEE_Z - 1e-6, 10001)
    plain = np.clip(1.0 - erfc(z * math.sqrt(0.5)), 0.0, 1.0)
    np.testing.assert_allclose(two_sided_score(z), plain, rtol=0, atol=1e-15)
    s = np.linspace(0.0, KNEE_SURPRISE, 1001)
    np.testing.assert_allclose(score_from_surprise(s), 1.0 - np.exp(-s), rtol=0, atol=1e-15)


def test_score_scale_meaning() -> None:
    # 0.99 means a 1 % two-sided tail: 2.576 standard deviations
    assert two_sided_score(np.array([Z_BAND]))[0] == pytest.approx(0.99, abs=1e-7)
    assert two_sided_score(np.array([1.959964]))[0] == pytest.approx(0.95, abs=1e-6)
    # the default critical level, 0.999, is still 3.29 standard deviations
    assert two_sided_score(np.array([3.2905]))[0] == pytest.approx(0.999, abs=1e-6)
    assert upper_score(np.array([-3.0, 0.0, Z_BAND])).tolist() == pytest.approx([0.0, 0.0, 0.99])
    assert two_sided_score(np.array([math.nan]))[0] == 0.0
    assert score_from_p(np.array([1.0, 0.01, 1e-4, math.nan, 2.0])).tolist() == pytest.approx(
        [0.0, 0.99, 0.9999, 0.0, 0.0]
    )
    # an underflowed p scores like infinite evidence: below 1, above any finite z
    assert two_sided_score(np.array([1e300]))[0] < score_from_p(np.array([0.0]))[0] < 1.0
    assert score_from_surprise(np.array([-1.0, 0.0, math.nan])).tolist() == [0.0, 0.0, 0.0]
    assert score_from_surprise(np.array([math.log(100.0)]))[0] == pytest.approx(0.99)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=12))
def test_every_score_is_in_the_unit_interval(values: list[float]) -> None:
    """Whatever the evidence (NaN, infinities, negatives), a score is in [0, 1)."""
    x = np.array(values, dtype=np.float64)
    for score_map in (score_from_surprise, two_sided_score, upper_score, score_from_p):
        score = score_map(x)
        assert score.shape == x.shape
        assert np.all((score >= 0.0) & (score < 1.0)), (score_map.__name__, x, score)
    assert np.all(score_from_surprise(np.where(x > 0.0, np.nan, x)) == 0.0)  # NaN or s <= 0


# -- recursions and windows ------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 3000),
    alpha=st.floats(0.0005, 0.999),
    start=st.floats(-1e3, 1e3),
    restart_at=st.lists(st.integers(0, 2999), max_size=3),
    seed=st.integers(0, 2**16),
)
def test_linear_recursion_matches_the_loop(
    n: int, alpha: float, start: float, restart_at: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    u = rng.normal(0.0, 10.0, n)
    beta = np.full(n, 1.0 - alpha)
    beta[[i for i in restart_at if i < n]] = 0.0
    expected = np.empty(n)
    y = start
    for i in range(n):
        y = beta[i] * y + u[i]
        expected[i] = y
    np.testing.assert_allclose(linear_recursion(beta, u, start), expected, rtol=1e-9, atol=1e-9)


def test_windows_ending_at_each_point() -> None:
    history = np.array([1.0, 2.0, 3.0])
    batch = np.array([4.0, 5.0])
    learned, first = windows_ending_at(history, batch, 3, learn=True)
    assert first == 0
    assert learned.tolist() == [[2.0, 3.0, 4.0], [3.0, 4.0, 5.0]]
    alone, first = windows_ending_at(history, batch, 3, learn=False)
    assert first == 0
    assert alone.tolist() == [[2.0, 3.0, 4.0], [2.0, 3.0, 5.0]]
    short, first = windows_ending_at(history[:1], batch, 3, learn=True)
    assert first == 1 and short.tolist() == [[1.0, 4.0, 5.0]]
    none, first = windows_ending_at(history[:1], batch, 3, learn=False)
    assert none.shape == (0, 3) and first == 2


def test_sorted_quantile_matches_numpy() -> None:
    rows = np.sort(np.random.default_rng(1).normal(size=(50, 37)), axis=1)
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        np.testing.assert_allclose(sorted_quantile(rows, q), np.quantile(rows, q, axis=1))


def test_robust_sigma_is_the_normal_scale_and_survives_constant_rows() -> None:
    rows = np.random.default_rng(2).normal(0.0, 3.0, size=(200, 500))
    centre = np.median(rows, axis=1)
    assert np.median(robust_sigma(rows, centre)) == pytest.approx(3.0, rel=0.05)
    sparse = np.zeros((1, 100))
    sparse[0, :15] = 1.0  # MAD 0, 90 % quantile of deviations 1
    assert robust_sigma(sparse, np.zeros(1))[0] == pytest.approx(1.0 / 1.6449, rel=1e-3)
    assert robust_sigma(np.full((1, 10), 4.0), np.full(1, 4.0))[0] == 0.0


# -- season detection -----------------------------------------------------------------
def test_period_detection() -> None:
    rng = np.random.default_rng(3)
    steps = np.arange(1000)
    daily = 10 * np.sin(2 * np.pi * steps / 24) + rng.normal(0, 3, 1000)
    assert detect_period(daily, 333, 0.3) == 24
    assert detect_period(rng.normal(size=1000), 333, 0.3) is None
    assert detect_period(np.cumsum(rng.normal(size=1000)), 333, 0.3) is None
    # one point off on 5-minute data is snapped back to a day
    assert snap_lag(287, 300.0) == 288
    assert snap_lag(50, 300.0) == 50


# -- registry ------------------------------------------------------------------------------
def test_registry_lists_the_twelve_algorithms() -> None:
    assert {
        "static",
        "ewma",
        "mad",
        "iqr",
        "cusum",
        "level_shift",
        "drift",
        "seasonal",
        "holt_winters",
        "flatline",
        "volatility",
        "gap",
    } <= set(ALGORITHMS)


def test_create_refuses_unknown_algorithms_and_bad_params() -> None:
    with pytest.raises(InvalidParams) as caught:
        create("prophet", {})
    assert caught.value.field == "algorithm" and "ewma" in caught.value.message
    with pytest.raises(InvalidParams) as caught:
        create("mad", {"window": 2})
    assert caught.value.field == "window" and "3" in caught.value.message
    with pytest.raises(InvalidParams) as caught:
        create("ewma", {"alpha": "fast"})
    assert caught.value.field == "alpha"
    with pytest.raises(InvalidParams) as caught:
        create("ewma", ["alpha"])  # type: ignore[arg-type]
    assert caught.value.field == "params"
    assert create("ewma", None).get_params()["alpha"] == 0.05


@pytest.mark.parametrize(
    ("algorithm", "params", "field"),
    [
        ("static", {}, "upper"),
        ("static", {"lower": 5.0, "upper": 1.0}, "upper"),
        ("iqr", {"window": 8, "q_low": 0.05, "q_high": 0.95}, "window"),
        ("seasonal", {"period_seconds": 86400.0, "period_points": 24}, "period_points"),
        ("seasonal", {"period_seconds": 86400.0, "slot_seconds": 7000.0}, "slot_seconds"),
        ("holt_winters", {"period_points": 500}, "warmup"),
        ("ewma", {"alpha": 1.0}, "alpha"),
        ("ewma", {"min_std": float("inf")}, "min_std"),
        ("cusum", {"k": 0}, "k"),
        ("drift", {"window": 5}, "window"),
        ("gap", {"jitter": 0}, "jitter"),
    ],
)
def test_cross_field_rules_name_their_field(
    algorithm: str, params: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidParams) as caught:
        create(algorithm, params)
    assert caught.value.field == field
    assert not caught.value.message.startswith("Value error")


# -- docstring examples ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_docstring_example_runs(name: str) -> None:
    module = importlib.import_module(ALGORITHMS[name].__module__)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, "no runnable example"
    assert result.failed == 0
