"""The no-data decision (services/anomaly/nodata/core.py): plain values in and out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.anomaly.nodata.core import SeriesWatch, decide, duration, explain

NOW = datetime(2026, 11, 1, 12, 18, 7, tzinfo=UTC).timestamp()
MIN = 60.0


def watch(key: str, last: float | None, **kw: object) -> SeriesWatch:
    fields: dict = {"silent_since": None, "no_data_seconds": 15 * MIN, "pages": True} | kw
    return SeriesWatch(key=key, last_ts=last, **fields)


def test_a_series_silent_for_the_setting_starts_one_silence_the_others_nothing() -> None:
    last = datetime(2026, 11, 1, 12, 3, 0, tzinfo=UTC).timestamp()
    decision = decide(
        [
            watch("quiet", last, interval=60.0),
            watch("reporting", NOW - 30),
            watch("almost", NOW - 15 * MIN + 1),  # one second short
            watch("never", None),  # never reported: nothing to miss
        ],
        NOW,
    )
    assert decision.ends == []
    (start,) = decision.starts
    assert (start.key, start.at, start.since, start.page) == ("quiet", NOW, last, True)
    assert start.explanation == (
        "no data for 15 min since 2026-11-01T12:03:00Z; expected every ~60 s"
    )


def test_exactly_no_data_seconds_is_silent() -> None:
    (start,) = decide([watch("s", NOW - 15 * MIN)], NOW).starts
    assert start.key == "s"


def test_off_or_disabled_detectors_start_nothing() -> None:
    old = NOW - 86400
    assert decide([watch("off", old, no_data_seconds=None)], NOW).starts == []
    assert decide([watch("disabled", old, enabled=False)], NOW).starts == []


def test_an_open_silence_records_nothing_more_while_silent() -> None:
    last = NOW - 3600
    decision = decide([watch("s", last, silent_since=last)], NOW)
    assert decision.starts == [] and decision.ends == []


def test_a_newer_point_ends_the_silence_and_resolves() -> None:
    since = NOW - 3600
    (end,) = decide([watch("s", NOW - 5, silent_since=since)], NOW).ends
    assert (end.key, end.by, end.resolve) == ("s", "data", True)
    (kept,) = decide([watch("s", NOW - 5, silent_since=since, auto_resolve=False)], NOW).ends
    assert (kept.by, kept.resolve) == ("data", False)


def test_turning_it_off_ends_open_silences() -> None:
    since = NOW - 3600
    (off,) = decide([watch("s", since, silent_since=since, no_data_seconds=None)], NOW).ends
    assert off.by == "off"
    (disabled,) = decide([watch("s", since, silent_since=since, enabled=False)], NOW).ends
    assert disabled.by == "off"


def test_page_age_and_policy() -> None:
    # the silence began (last point + setting) more than page_max_age before the check:
    # recorded, paged to nobody (a detector given no_data_seconds long after it went quiet)
    stale = NOW - 15 * MIN - 3601
    (start,) = decide([watch("s", stale)], NOW).starts
    assert start.page is False
    (limitless,) = decide([watch("s", stale, page_max_age_seconds=None)], NOW).starts
    assert limitless.page is True
    (fresh,) = decide([watch("s", NOW - 15 * MIN - 3599)], NOW).starts
    assert fresh.page is True
    (no_policy,) = decide([watch("s", NOW - 20 * MIN, pages=False)], NOW).starts
    assert no_policy.page is False


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45 s"),
        (119, "119 s"),
        (900, "15 min"),
        (7199, "120 min"),
        (3 * 3600, "3 h"),
        (3 * 86400, "3 d"),
    ],
)
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_explanation_without_an_interval() -> None:
    assert explain(125.0, 0.0, None) == "no data for 2 min since 1970-01-01T00:00:00Z"
