"""``auto``'s daily and weekly tables: a change is news where it is unlike both
yesterday and last week; the tables survive a round trip; older states load."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from services.anomaly.detectors.auto import AutoDetector, seasons
from services.anomaly.detectors.auto.layout import S, fresh
from services.anomaly.detectors.auto.params import SEASONAL
from services.anomaly.detectors.auto.seasons import WEEK

from ..helpers import assert_scores_identical, concat
from .series import DAY, HOUR, channel, run, stamps

HALF_HOUR = 1800.0


def weekly(weeks: int, cadence: float, growth: float, seed: int):
    """A daily cycle, weekends at half the weekday amplitude, the amplitude growing by
    ``growth`` each week (a business that grows); the day index of every point."""
    n = int(weeks * 7 * DAY / cadence)
    ts = stamps(n, cadence)
    day = ((ts - ts[0]) // DAY).astype(int)
    weekend = (day % 7) >= 5
    amplitude = 40.0 * (1.0 + growth) ** (day // 7)
    shape = 0.5 * (1.0 - np.cos(2.0 * np.pi * (ts - ts[0]) / DAY))
    noise = np.random.default_rng(seed).normal(0.0, 1.0, n)
    return ts, 20.0 + amplitude * shape * np.where(weekend, 0.5, 1.0) + noise, day


def table(slots: int = 4, width: float = 10.0):
    """A state with an empty weekly table of ``slots`` slots ``width`` seconds wide."""
    state = fresh()
    s = state["s"]
    s[WEEK[0]], s[WEEK[1]], s[S["season_t0"]] = slots, width, 0.0
    return s, state["week_v"], state["week_k"]


def test_a_change_needs_the_slot_written_exactly_one_season_before() -> None:
    s, values, index = table()
    assert math.isnan(seasons.change(s, WEEK, values, index, 0.0, 5.0)[0])  # never written
    for t, x in ((0.0, 5.0), (10.0, 6.0), (20.0, 7.0), (30.0, 8.0)):
        resid, k, slot = seasons.change(s, WEEK, values, index, t, x)
        seasons.learn(s, WEEK, values, index, resid, k, slot, x, 10.0, 10.0, 1e9)
    resid, _, slot = seasons.change(s, WEEK, values, index, 41.0, 9.0)  # one season on
    assert (resid, slot) == (4.0, 0)
    # after a gap of more than a season the slot is stale: no reference
    assert math.isnan(seasons.change(s, WEEK, values, index, 81.0, 9.0)[0])


def test_a_change_learns_its_range_and_is_news_only_outside_it() -> None:
    s, values, index = table()
    changes = [1.0, -1.0, 2.0, -2.0, 0.5]
    for i, resid in enumerate(changes):
        seasons.learn(s, WEEK, values, index, resid, float(i), i % 4, 0.0, 10.0, 10.0, 1e12)
    assert seasons.known(s, WEEK, 0.0, len(changes))
    assert not seasons.known(s, WEEK, 0.0, len(changes) + 1)
    assert not seasons.known(s, WEEK, math.nan, 0)
    assert seasons.excess(s, WEEK, 1.5, 0.0, 1e12) == 0.0  # inside [-2, 2]
    assert seasons.excess(s, WEEK, 4.0, 0.0, 1e12) > 0.0
    assert seasons.excess(s, WEEK, 6.0, 0.0, 1e12) > seasons.excess(s, WEEK, 4.0, 0.0, 1e12)
    # in half-widths of the range from its middle: 4 is two half-widths out
    assert seasons.spread(s, WEEK, 4.0, 1.0) == pytest.approx(2.0)
    assert seasons.spread(s, WEEK, 4.0, 2.0) == pytest.approx(1.0)


def test_the_seasonal_channel_counts_a_change_only_as_far_as_unlike_last_week() -> None:
    # hourly, two weeks learned; in week three one day repeats last week's same day
    # exactly but is unlike yesterday: with the weekly table it is no news
    ts, values, day = weekly(4, HOUR, growth=0.0, seed=11)
    per_day = int(DAY / HOUR)
    at = 16 * per_day  # a Tuesday
    values[at : at + per_day] = values[at - 7 * per_day : at - 6 * per_day] + 25.0
    values[at - 7 * per_day : at - 6 * per_day] += 25.0  # last Tuesday, the same
    day_of = slice(at, at + per_day)

    def seasonal_points(scores) -> np.ndarray:
        return (scores.detail[day_of] == SEASONAL) & (scores.score[day_of] > 0.5)

    assert seasonal_points(run(ts, values, week_seconds=0.0)[1]).any()
    assert not seasonal_points(run(ts, values)[1]).any()


def test_a_fall_unlike_yesterday_and_last_week_opens_the_level_gate() -> None:
    # half-hourly; on a Thursday morning the series slides over 8 hours to below its
    # nightly low and stays there: every point is close to its neighbours
    ts, values, _ = weekly(4, HALF_HOUR, growth=0.0, seed=9)
    per_day = int(DAY / HALF_HOUR)
    at = 23 * per_day + 16
    slide = np.linspace(0.0, 1.0, 16)
    values[at : at + 16] = values[at : at + 16] * (1.0 - slide) + 8.0 * slide
    values[at + 16 : at + 40] = 8.0 + np.random.default_rng(2).normal(0.0, 1.0, 24)
    _, scores = run(ts, values)
    hit = at + int(np.argmax(scores.score[at : at + 40]))
    assert scores.score[hit] >= 0.99
    assert channel(scores.detail[hit]) == "level"
    _, local_only = run(ts, values, level_gate_seasonal=0.0)
    assert local_only.score[at : at + 40].max() < 0.99


def test_the_weekly_table_survives_a_round_trip() -> None:
    ts, values, _ = weekly(3, HOUR, growth=0.05, seed=7)
    values[400] += 60.0
    whole = AutoDetector().score(ts, values)
    cut = 300  # past the first week: the weekly table has changes
    first = AutoDetector()
    head = first.score(ts[:cut], values[:cut])
    state = first.get_state()
    assert first._state["s"][S["week_count"]] > 0
    second = AutoDetector()
    second.set_state(json.loads(json.dumps(state, allow_nan=False)))
    tail = second.score(ts[cut:], values[cut:])
    assert_scores_identical(concat([head, tail]), whole)


def test_a_state_from_before_the_weekly_table_loads_and_scores() -> None:
    ts, values, _ = weekly(3, HOUR, growth=0.0, seed=3)
    first = AutoDetector()
    first.score(ts[:200], values[:200])
    old = json.loads(json.dumps(first.get_state()))
    for key in ("week_values", "week_index"):
        old.pop(key)
    old["scalars"] = old["scalars"][: S["week_slots"]]  # the scalars it had then
    second = AutoDetector()
    second.set_state(old)
    assert second.n_seen == 200
    later = second.score(ts[200:], values[200:])
    assert np.isfinite(later.score).all()
    assert second._state["s"][S["week_slots"]] == 0  # its weekly table stays off
