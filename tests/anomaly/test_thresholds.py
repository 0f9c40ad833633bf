"""The threshold policy, rule by rule, against a plain loop, and its one-point form."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.anomaly.detectors import InvalidParams, Scores, create
from services.anomaly.thresholds import (
    ThresholdResult,
    Thresholds,
    ThresholdState,
    apply_one,
    parse_thresholds,
)


def scores_of(score: list[float], expected: list[float] | None = None) -> Scores:
    n = len(score)
    centre = np.full(n, 50.0) if expected is None else np.asarray(expected, dtype=float)
    return Scores(
        score=np.asarray(score, dtype=float),
        expected=centre,
        lower=centre - 10.0,
        upper=centre + 10.0,
    )


def judge(
    config: dict[str, Any],
    score: list[float],
    values: list[float] | None = None,
    *,
    timestamps: list[float] | None = None,
    expected: list[float] | None = None,
    state: Any = None,
    learn: bool = True,
) -> ThresholdResult:
    n = len(score)
    ts = list(range(0, 60 * n, 60)) if timestamps is None else timestamps
    vs = [60.0] * n if values is None else values
    return parse_thresholds(config).apply(ts, vs, scores_of(score, expected), state, learn=learn)


# -- configuration ---------------------------------------------------------------
def test_defaults_follow_the_spec() -> None:
    assert parse_thresholds(None).model_dump() == {
        "score": 0.99,
        "direction": "both",
        "consecutive": 1,
        "cooldown_seconds": 0.0,
        "upper": None,
        "lower": None,
        "critical": 0.999,
    }


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"score": 1.5}, "score"),
        ({"score": -0.1}, "score"),
        ({"direction": "sideways"}, "direction"),
        ({"consecutive": 0}, "consecutive"),
        ({"cooldown_seconds": -1}, "cooldown_seconds"),
        ({"upper": 1.0, "lower": 2.0}, "lower"),
        ({"score": 0.99, "critical": 0.95}, "critical"),
        ({"upper": float("nan")}, "upper"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_configuration_names_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        parse_thresholds(raw)
    assert caught.value.field == field
    assert caught.value.message


def test_configuration_must_be_an_object() -> None:
    with pytest.raises(InvalidParams) as caught:
        parse_thresholds([0.99])  # type: ignore[arg-type]
    assert caught.value.field == "thresholds"


# -- score, direction, severity --------------------------------------------------------
def test_score_threshold_is_inclusive() -> None:
    result = judge({}, [0.5, 0.989, 0.99, 0.995, 0.9995])
    assert result.is_anomaly.tolist() == [False, False, True, True, True]
    assert result.severity.tolist() == [None, None, "warning", "warning", "critical"]


@pytest.mark.parametrize(
    ("direction", "flagged"),
    [("both", [True, True, False]), ("up", [True, False, False]), ("down", [False, True, False])],
)
def test_direction_compares_value_with_expected(direction: str, flagged: list[bool]) -> None:
    result = judge({"direction": direction}, [0.999, 0.999, 0.5], values=[80.0, 20.0, 80.0])
    assert result.is_anomaly.tolist() == flagged


def test_points_without_expected_pass_in_any_direction() -> None:
    result = judge(
        {"direction": "up"}, [0.999, 0.999], values=[10.0, 90.0], expected=[math.nan, math.nan]
    )
    assert result.is_anomaly.tolist() == [True, True]


# -- static bounds -----------------------------------------------------------------------
def test_static_bounds_are_anomalous_whatever_the_score_and_critical() -> None:
    result = judge(
        {"upper": 100.0, "lower": 0.0, "direction": "down", "consecutive": 3},
        [0.0, 0.0, 0.0, 0.0],
        values=[100.0, 100.5, -0.5, 50.0],
    )
    assert result.is_anomaly.tolist() == [False, True, True, False]
    assert result.severity.tolist() == [None, "critical", "critical", None]


# -- consecutive -----------------------------------------------------------------------------
def test_consecutive_needs_a_run_of_passing_points() -> None:
    result = judge({"consecutive": 3}, [0.995, 0.995, 0.995, 0.995, 0.5, 0.995, 0.995])
    assert result.is_anomaly.tolist() == [False, False, True, True, False, False, False]
    assert result.state.run == 2


def test_consecutive_run_carries_across_batches() -> None:
    config = {"consecutive": 3}
    first = judge(config, [0.5, 0.995, 0.995])
    assert not first.is_anomaly.any()
    state = json.loads(json.dumps(first.state.model_dump()))
    second = judge(config, [0.995, 0.995], timestamps=[180, 240], state=state)
    assert second.is_anomaly.tolist() == [True, True]


def test_direction_breaks_a_run() -> None:
    result = judge(
        {"consecutive": 2, "direction": "up"}, [0.995, 0.995, 0.995], values=[80.0, 20.0, 80.0]
    )
    assert result.is_anomaly.tolist() == [False, False, False]


# -- episodes and cooldown -----------------------------------------------------------------------
def test_cooldown_zero_separates_anomalies_with_normal_points_between() -> None:
    result = judge({}, [0.995, 0.995, 0.1, 0.995], timestamps=[0, 60, 120, 180])
    assert result.is_anomaly.tolist() == [True, True, False, True]
    np.testing.assert_array_equal(result.episode_start, [0, 0, np.nan, 180])
    assert result.opens_episode([0, 60, 120, 180]).tolist() == [True, False, False, True]


def test_cooldown_groups_but_never_suppresses() -> None:
    timestamps = [0, 60, 120, 180, 240, 900, 960]
    result = judge(
        {"cooldown_seconds": 300},
        [0.995, 0.1, 0.1, 0.9995, 0.1, 0.995, 0.1],
        timestamps=timestamps,
    )
    # every anomalous point is still flagged, with its own severity
    assert result.is_anomaly.tolist() == [True, False, False, True, False, True, False]
    assert result.severity.tolist() == ["warning", None, None, "critical", None, "warning", None]
    # 180 is within 300 s of 0: same episode; 900 is 720 s after 180: a new one
    np.testing.assert_array_equal(result.episode_start, [0, np.nan, np.nan, 0, np.nan, 900, np.nan])
    assert result.opens_episode(timestamps).tolist() == [
        True, False, False, False, False, True, False,
    ]  # fmt: skip


def test_cooldown_is_measured_from_the_latest_anomaly_so_episodes_chain() -> None:
    result = judge(
        {"cooldown_seconds": 100}, [0.995] * 4, timestamps=[0, 90, 180, 270]
    )  # each 90 s after the previous one
    np.testing.assert_array_equal(result.episode_start, [0, 0, 0, 0])


def test_an_unbroken_run_is_one_episode_even_with_sparse_points() -> None:
    result = judge({}, [0.995, 0.995, 0.995], timestamps=[0, 3600, 7200])
    np.testing.assert_array_equal(result.episode_start, [0, 0, 0])


def test_episode_carries_across_batches_through_the_json_state() -> None:
    config = {"cooldown_seconds": 600}
    first = judge(config, [0.1, 0.995, 0.1], timestamps=[0, 60, 120])
    state = json.loads(json.dumps(first.state.model_dump(), allow_nan=False))
    assert state == {
        "run": 0,
        "last_anomaly": 60.0,
        "episode_start": 60.0,
        "previous_anomalous": False,
    }
    second = judge(config, [0.995, 0.1, 0.995], timestamps=[500, 560, 1400], state=state)
    np.testing.assert_array_equal(second.episode_start, [60, np.nan, 1400])
    assert second.state.episode_start == 1400.0


def test_direct_follower_in_the_next_batch_joins_the_episode() -> None:
    first = judge({}, [0.995], timestamps=[0])
    second = judge({}, [0.995], timestamps=[7200], state=first.state)
    np.testing.assert_array_equal(second.episode_start, [0])


# -- late points and empty batches ---------------------------------------------------------
def test_late_points_are_judged_alone_and_leave_the_state() -> None:
    state = ThresholdState(run=2, last_anomaly=100.0, episode_start=40.0, previous_anomalous=True)
    result = judge(
        {"consecutive": 3, "upper": 90.0},
        [0.9999, 0.9999],
        values=[60.0, 95.0],
        timestamps=[10, 20],
        state=state,
        learn=False,
    )
    assert result.is_anomaly.tolist() == [False, True]
    assert np.all(np.isnan(result.episode_start))
    assert result.state == state
    alone = judge({}, [0.995], timestamps=[10], state=state, learn=False)
    assert alone.is_anomaly.tolist() == [True]
    assert np.isnan(alone.episode_start[0])


def test_empty_batch_keeps_the_state() -> None:
    state = ThresholdState(run=1, last_anomaly=5.0, episode_start=5.0, previous_anomalous=True)
    result = judge({}, [], timestamps=[], values=[], state=state)
    assert result.is_anomaly.shape == (0,) and result.state == state


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        Thresholds().apply([0, 1], [1.0], scores_of([0.5]))


def test_works_on_real_detector_output() -> None:
    rng = np.random.default_rng(31)
    values = rng.normal(10.0, 1.0, 300)
    values[250:253] = 30.0
    timestamps = np.arange(300) * 60.0
    scores = create("ewma", {}).score(timestamps, values)
    result = parse_thresholds({"cooldown_seconds": 600}).apply(timestamps, values, scores)
    assert result.is_anomaly[250:253].all()
    assert result.severity[250] == "critical"
    assert result.opens_episode(timestamps)[250:253].tolist() == [True, False, False]


# -- against a plain loop ----------------------------------------------------------------
def reference(
    config: Thresholds, timestamps: list[float], values: list[float], scores: Scores, state: dict
) -> tuple[list[bool], list[str | None], list[float], dict]:
    """The rules written point by point, as the module docstring states them."""
    run = state["run"]
    last, start, previous = (
        state["last_anomaly"],
        state["episode_start"],
        state["previous_anomalous"],
    )
    flags, severities, starts = [], [], []
    for t, v, s, e in zip(timestamps, values, scores.score, scores.expected, strict=True):
        ok = (
            config.direction == "both"
            or math.isnan(e)
            or (v > e if config.direction == "up" else v < e)
        )
        passes = s >= config.score and ok
        run = run + 1 if passes else 0
        crossed = (config.upper is not None and v > config.upper) or (
            config.lower is not None and v < config.lower
        )
        hit = passes and run >= config.consecutive
        anomalous = hit or crossed
        severity = None
        episode = math.nan
        if anomalous:
            severity = "critical" if crossed or (hit and s >= config.critical) else "warning"
            joins = start is not None and (
                previous or (last is not None and t - last <= config.cooldown_seconds)
            )
            if not joins:
                start = t
            episode, last = start, t
        flags.append(anomalous)
        severities.append(severity)
        starts.append(episode)
        previous = anomalous
    new_state = {
        "run": run,
        "last_anomaly": last,
        "episode_start": start,
        "previous_anomalous": previous,
    }
    return flags, severities, starts, new_state


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    n=st.integers(0, 40),
    direction=st.sampled_from(["both", "up", "down"]),
    consecutive=st.integers(1, 4),
    cooldown=st.sampled_from([0.0, 59.0, 60.0, 150.0, 1000.0]),
    bounds=st.sampled_from([(None, None), (None, 70.0), (30.0, None), (30.0, 70.0)]),
)
def test_vectorised_policy_matches_the_loop_in_any_chunking(
    data: st.DataObject,
    n: int,
    direction: str,
    consecutive: int,
    cooldown: float,
    bounds: tuple[float | None, float | None],
) -> None:
    config = Thresholds(
        direction=direction,  # type: ignore[arg-type]
        consecutive=consecutive,
        cooldown_seconds=cooldown,
        lower=bounds[0],
        upper=bounds[1],
    )
    gaps = data.draw(st.lists(st.sampled_from([30.0, 60.0, 120.0, 900.0]), min_size=n, max_size=n))
    timestamps = np.cumsum(gaps).tolist()
    values = data.draw(
        st.lists(st.sampled_from([20.0, 45.0, 50.0, 55.0, 80.0]), min_size=n, max_size=n)
    )
    score = data.draw(
        st.lists(st.sampled_from([0.0, 0.5, 0.99, 0.995, 0.999, 1.0]), min_size=n, max_size=n)
    )
    expected = data.draw(st.lists(st.sampled_from([50.0, math.nan]), min_size=n, max_size=n))
    scores = scores_of(score, expected)
    flags, severities, starts, final = reference(
        config, timestamps, values, scores, ThresholdState().model_dump()
    )
    cuts = sorted(set(data.draw(st.lists(st.integers(0, n), max_size=4))))
    state: dict[str, Any] = ThresholdState().model_dump()
    got_flags: list[bool] = []
    got_severities: list[str | None] = []
    got_starts: list[float] = []
    for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
        part = Scores(
            score=scores.score[lo:hi],
            expected=scores.expected[lo:hi],
            lower=scores.lower[lo:hi],
            upper=scores.upper[lo:hi],
        )
        result = config.apply(timestamps[lo:hi], values[lo:hi], part, state)
        got_flags += result.is_anomaly.tolist()
        got_severities += result.severity.tolist()
        got_starts += result.episode_start.tolist()
        state = json.loads(json.dumps(result.state.model_dump(), allow_nan=False))
    assert got_flags == flags
    assert got_severities == severities
    np.testing.assert_array_equal(got_starts, starts)
    assert state == final


# -- the one-point policy gives exactly what the vectorised one gives ----------
stamps = st.floats(1.7e9, 1.8e9, allow_nan=False)
maybe_stamp = st.none() | stamps
policies = st.builds(
    lambda score, gap, direction, consecutive, cooldown, bounds: Thresholds(
        score=score,
        critical=min(1.0, score + gap),
        direction=direction,
        consecutive=consecutive,
        cooldown_seconds=cooldown,
        upper=bounds[1] if bounds else None,
        lower=bounds[0] if bounds else None,
    ),
    st.sampled_from([0.5, 0.9, 0.99]),
    st.sampled_from([0.0, 0.005, 0.5]),
    st.sampled_from(["both", "up", "down"]),
    st.integers(1, 3),
    st.sampled_from([0.0, 60.0, 3600.0]),
    st.none() | st.sampled_from([(0.0, 10.0), (-5.0, 5.0)]),
)
states = st.builds(
    lambda run, last, start, previous: ThresholdState(
        run=run, last_anomaly=last, episode_start=start, previous_anomalous=previous
    ).model_dump(),
    st.integers(0, 4),
    maybe_stamp,
    maybe_stamp,
    st.booleans(),
) | st.just({})


@settings(max_examples=400, deadline=None)
@given(
    policies,
    states,
    stamps,
    st.floats(-20, 20, allow_nan=False),
    st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 0.995, 0.9999, 1.0]),
    st.none() | st.floats(-20, 20, allow_nan=False),
    st.booleans(),
)
def test_one_point_equals_the_vectorised_policy(
    policy: Thresholds,
    state: dict[str, Any],
    timestamp: float,
    value: float,
    score: float,
    expected: float | None,
    learn: bool,
) -> None:
    e = math.nan if expected is None else expected
    scores = Scores(
        score=np.array([score]),
        expected=np.array([e]),
        lower=np.array([math.nan]),
        upper=np.array([math.nan]),
    )
    ts, vs = np.array([timestamp]), np.array([value])
    reference = policy.apply(ts, vs, scores, state, learn=learn)
    is_anomaly, severity, start, after = apply_one(
        policy, timestamp, value, score, e, state, learn=learn
    )
    assert is_anomaly == bool(reference.is_anomaly[0])
    assert severity == reference.severity[0]
    assert (math.isnan(start) and math.isnan(reference.episode_start[0])) or (
        start == reference.episode_start[0]
    )
    if learn:
        assert after == reference.state.model_dump()
        assert bool(reference.opens_episode(ts)[0]) == (is_anomaly and start == timestamp)
