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
    _runs,
    apply_one,
    episode_end,
    parse_thresholds,
)


def scores_of(
    score: list[float], expected: list[float] | None = None, learning: list[bool] | None = None
) -> Scores:
    n = len(score)
    centre = np.full(n, 50.0) if expected is None else np.asarray(expected, dtype=float)
    return Scores(
        score=np.asarray(score, dtype=float),
        expected=centre,
        lower=centre - 10.0,
        upper=centre + 10.0,
        learning=None if learning is None else np.asarray(learning, dtype=bool),
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
    learning: list[bool] | None = None,
    now: float | None = None,
) -> ThresholdResult:
    n = len(score)
    ts = list(range(0, 60 * n, 60)) if timestamps is None else timestamps
    vs = [60.0] * n if values is None else values
    return parse_thresholds(config).apply(
        ts, vs, scores_of(score, expected, learning), state, learn=learn, now=now
    )


# -- configuration ---------------------------------------------------------------
def test_defaults_follow_the_spec() -> None:
    assert parse_thresholds(None).model_dump() == {
        "score": 0.99,
        "direction": "both",
        "consecutive": 1,
        "cooldown_seconds": 1800.0,
        "upper": None,
        "lower": None,
        "critical": 0.999,
        "page_max_age_seconds": 3600.0,
        "auto_resolve": True,
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
        ({"cooldown_seconds": 400 * 86400}, "cooldown_seconds"),
        ({"page_max_age_seconds": 0}, "page_max_age_seconds"),
        ({"page_max_age_seconds": -60}, "page_max_age_seconds"),
        ({"page_max_age_seconds": "an hour"}, "page_max_age_seconds"),
        ({"page_max_age_seconds": float("inf")}, "page_max_age_seconds"),
        ({"auto_resolve": "yes"}, "auto_resolve"),
        ({"auto_resolve": 1}, "auto_resolve"),
        ({"auto_resolve": None}, "auto_resolve"),
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
    result = judge(
        {"cooldown_seconds": 0}, [0.995, 0.995, 0.1, 0.995], timestamps=[0, 60, 120, 180]
    )
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
        "paged": True,
        "last_seen": 120.0,
        "interval": 60.0,
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


# -- learning: never critical, never a page, unless a bound -----------------------------
def test_learning_points_are_never_critical_unless_they_cross_a_bound() -> None:
    result = judge(
        {"upper": 100.0, "cooldown_seconds": 0},
        [0.9999, 0.9999, 0.0, 0.9999],
        values=[60.0, 60.0, 150.0, 60.0],
        learning=[True, False, True, True],
        timestamps=[0, 60, 120, 180],
    )
    assert result.is_anomaly.tolist() == [True, True, True, True]
    # the same score is critical once the detector has learned; a bound always is
    assert result.severity.tolist() == ["warning", "critical", "critical", "warning"]


def test_learning_points_never_page_but_a_bound_does() -> None:
    result = judge(
        {"upper": 100.0, "cooldown_seconds": 0},
        [0.9999, 0.1, 0.0, 0.1, 0.9999],
        values=[60.0, 60.0, 150.0, 60.0, 60.0],
        learning=[True, True, True, True, True],
        timestamps=[0, 60, 120, 180, 240],
    )
    assert result.is_anomaly.tolist() == [True, False, True, False, True]
    assert result.page.tolist() == [False, False, True, False, False]
    np.testing.assert_array_equal(result.episode_start, [0, np.nan, 120, np.nan, 240])


def test_an_episode_opened_while_learning_pages_once_the_detector_has_learned() -> None:
    result = judge(
        {"cooldown_seconds": 600},
        [0.9999, 0.9999, 0.9999, 0.9999],
        learning=[True, True, False, False],
        timestamps=[0, 60, 120, 180],
    )
    np.testing.assert_array_equal(result.episode_start, [0, 0, 0, 0])
    assert result.page.tolist() == [False, False, True, False]  # one page, when eligible
    assert result.severity.tolist() == ["warning", "warning", "critical", "critical"]
    assert result.state.paged


def test_without_learning_information_every_point_counts_as_learned() -> None:
    result = judge({}, [0.9999], learning=None)
    assert result.severity.tolist() == ["critical"] and result.page.tolist() == [True]


# -- page eligibility by age --------------------------------------------------------------
def test_a_point_older_than_the_page_age_limit_when_scored_pages_nobody() -> None:
    timestamps = [0.0, 3600.0, 7200.0]
    now = 7200.0 + 3600.0  # the first two are older than an hour, the last exactly an hour
    result = judge({"cooldown_seconds": 0}, [0.9999, 0.1, 0.9999], timestamps=timestamps, now=now)
    assert result.is_anomaly.tolist() == [True, False, True]  # still anomalies
    assert result.severity.tolist() == ["critical", None, "critical"]
    assert result.page.tolist() == [False, False, True]  # the limit is inclusive


def test_the_age_limit_is_a_setting_and_can_be_lifted() -> None:
    score, ts, now = [0.9999], [0.0], 10 * 86400.0
    assert judge({}, score, timestamps=ts, now=now).page.tolist() == [False]
    lifted = {"page_max_age_seconds": None}
    assert judge(lifted, score, timestamps=ts, now=now).page.tolist() == [True]
    longer = {"page_max_age_seconds": 11 * 86400}
    assert judge(longer, score, timestamps=ts, now=now).page.tolist() == [True]
    # no clock (a backtest): age does not count
    assert judge({}, score, timestamps=ts, now=None).page.tolist() == [True]


def test_a_week_of_backfill_pages_nobody_but_an_incident_still_going_on_pages() -> None:
    week = np.arange(0.0, 7 * 86400.0, 300.0)
    now = float(week[-1]) + 300.0
    score = np.full(week.shape[0], 0.1)
    score[10] = score[1000] = 0.9999  # incidents 7 days and 3.5 days ago
    score[-3:] = 0.9999  # one going on as the backfill ends, 15 minutes ago and on
    result = parse_thresholds({}).apply(
        week, np.full(week.shape[0], 60.0), scores_of(score.tolist()), now=now
    )
    assert np.flatnonzero(result.is_anomaly).tolist() == [
        10,
        1000,
        *range(len(week) - 3, len(week)),
    ]
    # only the fresh incident pages: once, at its first point
    assert np.flatnonzero(result.page).tolist() == [len(week) - 3]
    # an old incident that goes on into fresh points pages at the first fresh one
    old = np.arange(0.0, 3 * 3600.0, 300.0)
    ongoing = parse_thresholds({}).apply(
        old, np.full(old.shape[0], 60.0), scores_of([0.9999] * old.shape[0]), now=old[-1]
    )
    assert len(set(ongoing.episode_start.tolist())) == 1
    assert np.flatnonzero(ongoing.page).tolist() == [np.flatnonzero(old >= old[-1] - 3600)[0]]


def test_late_points_never_page() -> None:
    result = judge({"upper": 10.0}, [1.0], values=[50.0], learn=False, now=0.0)
    assert result.is_anomaly.tolist() == [True] and result.page.tolist() == [False]


# -- the default cooldown and the end of an episode ------------------------------------------
def test_the_default_cooldown_groups_a_flapping_incident_into_one_page() -> None:
    # 5-minute data flapping over and under the threshold for 40 minutes
    score = [0.1, 0.9999, 0.1, 0.1, 0.9999, 0.1, 0.9999, 0.1, 0.1, 0.1, 0.9999, 0.1]
    timestamps = [300.0 * i for i in range(len(score))]
    result = judge({}, score, timestamps=timestamps)
    assert result.is_anomaly.sum() == 4
    assert set(result.episode_start[result.is_anomaly].tolist()) == {300.0}
    assert result.page.sum() == 1
    # with no cooldown the same incident paged four times
    assert judge({"cooldown_seconds": 0}, score, timestamps=timestamps).page.sum() == 4


def test_an_episode_ends_at_the_first_point_past_the_cooldown_and_resolves() -> None:
    timestamps = [0, 60, 120, 600, 660, 780]
    result = judge(
        {"cooldown_seconds": 600}, [0.9999, 0.1, 0.1, 0.1, 0.1, 0.9999], timestamps=timestamps
    )
    # 600 is exactly the cooldown after 0 (still the episode); 660 is past it
    np.testing.assert_array_equal(result.resolve, [np.nan] * 4 + [0, np.nan])
    np.testing.assert_array_equal(result.episode_start, [0] + [np.nan] * 4 + [780])
    assert result.page.tolist() == [True, False, False, False, False, True]
    assert result.state.episode_start == 780.0 and result.state.paged


def test_an_anomaly_opening_the_next_episode_ends_the_previous_one() -> None:
    result = judge({"cooldown_seconds": 60}, [0.9999, 0.1, 0.9999], timestamps=[0, 60, 600])
    np.testing.assert_array_equal(result.resolve, [np.nan, np.nan, 0])
    assert result.page.tolist() == [True, False, True]


def test_an_episode_ending_across_batches_resolves_in_the_later_one() -> None:
    config = {"cooldown_seconds": 600}
    first = judge(config, [0.9999, 0.1], timestamps=[0, 300])
    assert np.isnan(first.resolve).all() and first.state.episode_start == 0.0
    state = json.loads(json.dumps(first.state.model_dump()))
    second = judge(config, [0.1, 0.1, 0.1], timestamps=[600, 900, 1200], state=state)
    np.testing.assert_array_equal(second.resolve, [np.nan, 0, np.nan])
    assert second.state.episode_start is None and not second.state.paged
    third = judge(config, [0.1], timestamps=[1500], state=second.state)
    assert np.isnan(third.resolve).all()  # ended once, resolved once


def test_auto_resolve_off_ends_the_episode_without_a_resolve() -> None:
    result = judge(
        {"cooldown_seconds": 60, "auto_resolve": False},
        [0.9999, 0.1, 0.1],
        timestamps=[0, 60, 120],
    )
    assert np.isnan(result.resolve).all()
    assert result.state.episode_start is None


def test_an_episode_that_never_paged_resolves_nothing() -> None:
    result = judge(
        {"cooldown_seconds": 60},
        [0.9999, 0.1, 0.1],
        timestamps=[0, 60, 120],
        learning=[True, True, True],
    )
    assert result.page.sum() == 0 and np.isnan(result.resolve).all()


def test_when_a_quiet_episode_ends() -> None:
    policy = parse_thresholds({"cooldown_seconds": 1800})
    paged = ThresholdState(
        last_anomaly=1000.0, episode_start=400.0, paged=True, last_seen=1000.0, interval=300.0
    )
    assert episode_end(policy, paged) == 1000.0 + 1800.0
    # an hourly series is not quiet half an hour after its last point: two intervals
    hourly = paged.model_copy(update={"interval": 3600.0})
    assert episode_end(policy, hourly) == 1000.0 + 7200.0
    assert episode_end(policy, paged.model_copy(update={"paged": False})) is None
    assert episode_end(policy, paged.model_copy(update={"episode_start": None})) is None
    no_resolve = parse_thresholds({"auto_resolve": False})
    assert episode_end(no_resolve, paged) is None
    assert episode_end(policy, None) is None


# -- against a plain loop ----------------------------------------------------------------
def reference(
    config: Thresholds,
    timestamps: list[float],
    values: list[float],
    scores: Scores,
    state: dict,
    now: float | None,
) -> tuple[list[bool], list[str | None], list[float], list[bool], list[float], dict]:
    """The rules written point by point, as the module docstring states them."""
    run = state["run"]
    last, start, previous = (
        state["last_anomaly"],
        state["episode_start"],
        state["previous_anomalous"],
    )
    paged, last_seen, interval = state["paged"], state["last_seen"], state["interval"]
    learning = [False] * len(values) if scores.learning is None else scores.learning.tolist()
    cooldown = config.cooldown_seconds
    flags, severities, starts, pages, resolves = [], [], [], [], []
    for t, v, s, e, still_learning in zip(
        timestamps, values, scores.score, scores.expected, learning, strict=True
    ):
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
        # the open episode ends at the first point past the cooldown that does not join it
        resolve = math.nan
        joins = start is not None and (previous or (last is not None and t - last <= cooldown))
        if start is not None and last is not None and t - last > cooldown:
            if not (anomalous and joins):
                if paged and config.auto_resolve:
                    resolve = start
                start, paged = None, False
        severity = None
        episode = math.nan
        page = False
        if anomalous:
            critical = crossed or (hit and not still_learning and s >= config.critical)
            severity = "critical" if critical else "warning"
            joins = start is not None and (previous or (last is not None and t - last <= cooldown))
            if not joins:
                start, paged = t, False
            episode, last = start, t
            fresh = now is None or config.page_max_age_seconds is None
            fresh = fresh or now - t <= config.page_max_age_seconds  # type: ignore[operator]
            if not paged and (crossed or not still_learning) and fresh:
                page = paged = True
        flags.append(anomalous)
        severities.append(severity)
        starts.append(episode)
        pages.append(page)
        resolves.append(resolve)
        previous = anomalous
        if last_seen is not None:
            interval = t - last_seen
        last_seen = t
    new_state = {
        "run": run,
        "last_anomaly": last,
        "episode_start": start,
        "previous_anomalous": previous,
        "paged": paged,
        "last_seen": last_seen,
        "interval": interval,
    }
    return flags, severities, starts, pages, resolves, new_state


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    n=st.integers(0, 40),
    direction=st.sampled_from(["both", "up", "down"]),
    consecutive=st.integers(1, 4),
    cooldown=st.sampled_from([0.0, 59.0, 60.0, 150.0, 1000.0]),
    bounds=st.sampled_from([(None, None), (None, 70.0), (30.0, None), (30.0, 70.0)]),
    max_age=st.sampled_from([None, 60.0, 600.0]),
    auto_resolve=st.booleans(),
)
def test_vectorised_policy_matches_the_loop_in_any_chunking(
    data: st.DataObject,
    n: int,
    direction: str,
    consecutive: int,
    cooldown: float,
    bounds: tuple[float | None, float | None],
    max_age: float | None,
    auto_resolve: bool,
) -> None:
    config = Thresholds(
        direction=direction,  # type: ignore[arg-type]
        consecutive=consecutive,
        cooldown_seconds=cooldown,
        lower=bounds[0],
        upper=bounds[1],
        page_max_age_seconds=max_age,
        auto_resolve=auto_resolve,
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
    learning = data.draw(
        st.none() | st.lists(st.booleans(), min_size=n, max_size=n).map(sorted).map(reversed)
    )
    if learning is not None:
        learning = list(learning)  # learning first, then learned (or any mix below)
        if data.draw(st.booleans()):
            learning = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    now = data.draw(st.none() | st.sampled_from([0.0, 5000.0, 1e5]))
    scores = scores_of(score, expected, learning)
    flags, severities, starts, pages, resolves, final = reference(
        config, timestamps, values, scores, ThresholdState().model_dump(), now
    )
    cuts = sorted(set(data.draw(st.lists(st.integers(0, n), max_size=4))))
    state: dict[str, Any] = ThresholdState().model_dump()
    got_flags: list[bool] = []
    got_severities: list[str | None] = []
    got_starts: list[float] = []
    got_pages: list[bool] = []
    got_resolves: list[float] = []
    for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
        part = Scores(
            score=scores.score[lo:hi],
            expected=scores.expected[lo:hi],
            lower=scores.lower[lo:hi],
            upper=scores.upper[lo:hi],
            learning=None if scores.learning is None else scores.learning[lo:hi],
        )
        result = config.apply(timestamps[lo:hi], values[lo:hi], part, state, now=now)
        got_flags += result.is_anomaly.tolist()
        got_severities += result.severity.tolist()
        got_starts += result.episode_start.tolist()
        got_pages += result.page.tolist()
        got_resolves += result.resolve.tolist()
        state = json.loads(json.dumps(result.state.model_dump(), allow_nan=False))
    assert got_flags == flags
    assert got_severities == severities
    np.testing.assert_array_equal(got_starts, starts)
    assert got_pages == pages
    np.testing.assert_array_equal(got_resolves, resolves)
    assert state == final


# -- the one-point policy gives exactly what the vectorised one gives ----------
stamps = st.floats(1.7e9, 1.8e9, allow_nan=False)
maybe_stamp = st.none() | stamps
policies = st.builds(
    lambda score, gap, direction, consecutive, cooldown, bounds, max_age, auto: Thresholds(
        score=score,
        critical=min(1.0, score + gap),
        direction=direction,
        consecutive=consecutive,
        cooldown_seconds=cooldown,
        upper=bounds[1] if bounds else None,
        lower=bounds[0] if bounds else None,
        page_max_age_seconds=max_age,
        auto_resolve=auto,
    ),
    st.sampled_from([0.5, 0.9, 0.99]),
    st.sampled_from([0.0, 0.005, 0.5]),
    st.sampled_from(["both", "up", "down"]),
    st.integers(1, 3),
    st.sampled_from([0.0, 60.0, 3600.0]),
    st.none() | st.sampled_from([(0.0, 10.0), (-5.0, 5.0)]),
    st.none() | st.sampled_from([60.0, 3600.0]),
    st.booleans(),
)
states = st.builds(
    lambda run, last, start, previous, paged, seen, interval: ThresholdState(
        run=run,
        last_anomaly=last,
        episode_start=start,
        previous_anomalous=previous,
        paged=paged,
        last_seen=seen,
        interval=interval,
    ).model_dump(),
    st.integers(0, 4),
    maybe_stamp,
    maybe_stamp,
    st.booleans(),
    st.booleans(),
    maybe_stamp,
    st.none() | st.floats(1.0, 1e5),
) | st.just({})


@settings(max_examples=500, deadline=None)
@given(
    policies,
    states,
    stamps,
    st.floats(-20, 20, allow_nan=False),
    st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 0.995, 0.9999, 1.0]),
    st.none() | st.floats(-20, 20, allow_nan=False),
    st.booleans(),
    st.booleans(),
    st.none() | stamps,
)
def test_one_point_equals_the_vectorised_policy(
    policy: Thresholds,
    state: dict[str, Any],
    timestamp: float,
    value: float,
    score: float,
    expected: float | None,
    learn: bool,
    learning: bool,
    now: float | None,
) -> None:
    e = math.nan if expected is None else expected
    scores = Scores(
        score=np.array([score]),
        expected=np.array([e]),
        lower=np.array([math.nan]),
        upper=np.array([math.nan]),
        learning=np.array([learning]),
    )
    ts, vs = np.array([timestamp]), np.array([value])
    reference = policy.apply(ts, vs, scores, state, learn=learn, now=now)
    verdict = apply_one(
        policy, timestamp, value, score, e, state, learn=learn, learning=learning, now=now
    )
    assert verdict.is_anomaly == bool(reference.is_anomaly[0])
    assert verdict.severity == reference.severity[0]
    start = verdict.episode_start
    assert (math.isnan(start) and math.isnan(reference.episode_start[0])) or (
        start == reference.episode_start[0]
    )
    assert verdict.page == bool(reference.page[0])
    np.testing.assert_array_equal([verdict.resolve], reference.resolve)
    if learn:
        assert verdict.state == reference.state.model_dump()
        assert bool(reference.opens_episode(ts)[0]) == (verdict.is_anomaly and start == timestamp)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), max_size=40), st.integers(0, 10**6))
def test_runs_count_passing_points_in_a_row_continuing_the_carried_run(
    passes: list[bool], carried: int
) -> None:
    expected, run = [], carried
    for passed in passes:
        run = run + 1 if passed else 0
        expected.append(run)
    assert _runs(np.array(passes, dtype=bool), carried).tolist() == expected
