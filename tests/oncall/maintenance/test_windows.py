"""The pure maintenance window rules: when a window is in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.oncall.maintenance.windows import (
    AlertScope,
    InvalidWindow,
    Occurrence,
    Scope,
    Window,
    active,
    covers,
    next_occurrence,
    validate,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_one_off_window_is_in_force_from_start_to_end_exclusive() -> None:
    window = Window(utc(2026, 11, 23, 8), utc(2026, 11, 23, 10))
    assert validate(window) == utc(2026, 11, 23, 10)
    assert active(window, utc(2026, 11, 23, 7, 59)) is None
    assert active(window, utc(2026, 11, 23, 8)) == Occurrence(window.start, window.end)
    assert active(window, utc(2026, 11, 23, 9, 59)) is not None
    assert active(window, utc(2026, 11, 23, 10)) is None
    assert next_occurrence(window, utc(2026, 11, 23, 7)) == Occurrence(window.start, window.end)
    assert next_occurrence(window, utc(2026, 11, 23, 9)) is None


def test_a_weekly_window_keeps_its_wall_time_across_dst() -> None:
    # Sundays 02:00-04:00 Berlin: 01:00 UTC in winter, 00:00 UTC in summer
    window = Window(utc(2026, 3, 1, 1), utc(2026, 3, 1, 3), "FREQ=WEEKLY;BYDAY=SU", "Europe/Berlin")
    assert validate(window) is None  # recurs forever
    assert active(window, utc(2026, 3, 8, 2, 30)) == Occurrence(
        utc(2026, 3, 8, 1), utc(2026, 3, 8, 3)
    )
    assert active(window, utc(2026, 3, 9, 2)) is None  # a Monday
    assert active(window, utc(2026, 4, 5, 0, 30)) == Occurrence(utc(2026, 4, 5), utc(2026, 4, 5, 2))
    assert active(window, utc(2026, 4, 5, 2, 30)) is None  # 04:30 local: over
    assert next_occurrence(window, utc(2026, 3, 30)) == Occurrence(
        utc(2026, 4, 5), utc(2026, 4, 5, 2)
    )


def test_count_and_until_bound_the_series() -> None:
    daily = Window(utc(2026, 1, 1, 22), utc(2026, 1, 1, 23), "FREQ=DAILY;COUNT=3")
    assert validate(daily) == utc(2026, 1, 3, 23)
    assert active(daily, utc(2026, 1, 3, 22, 30)) is not None
    assert active(daily, utc(2026, 1, 4, 22, 30)) is None
    until = Window(
        utc(2026, 1, 1, 22), utc(2026, 1, 1, 23), "RRULE:FREQ=DAILY;UNTIL=20260102T220000Z"
    )
    assert validate(until) == utc(2026, 1, 2, 23)


def test_overlapping_occurrences_answer_the_latest() -> None:
    window = Window(utc(2026, 1, 1), utc(2026, 1, 2, 12), "FREQ=DAILY")
    assert active(window, utc(2026, 1, 2, 6)) == Occurrence(utc(2026, 1, 2), utc(2026, 1, 3, 12))


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ("FREQ=MINUTELY", "rrule"),
        ("FREQ=HOURLY", "rrule"),
        ("BYDAY=SU", "rrule"),
        ("FREQ=WEEKLY;BYDAY=XX", "rrule"),
        ("FREQ=WEEKLY;DTSTART=20260101T000000Z", "rrule"),
        ("FREQ=DAILY\nRDATE:20260101", "rrule"),
        ("FREQ=DAILY;UNTIL=20260102T220000", "rrule"),  # UNTIL must be UTC
    ],
)
def test_rules_that_cannot_be_are_refused(rule: str, field: str) -> None:
    with pytest.raises(InvalidWindow) as refused:
        validate(Window(utc(2026, 1, 1), utc(2026, 1, 1, 1), rule, "Europe/Berlin"))
    assert refused.value.field == field


def test_an_occurrence_lasts_at_most_31_days_and_ends_after_it_starts() -> None:
    with pytest.raises(InvalidWindow):
        validate(Window(utc(2026, 1, 1), utc(2026, 1, 1) + timedelta(days=32), "FREQ=YEARLY"))
    with pytest.raises(InvalidWindow):
        validate(Window(utc(2026, 1, 1), utc(2026, 1, 1)))


def test_a_scope_covers_its_policy_integration_or_detector_only() -> None:
    alert = AlertScope(policy_id="web", integration_id="i-1", detector_id="latency")
    assert covers(Scope(policy_id="web"), alert)
    assert covers(Scope(integration_id="i-1"), alert)
    assert covers(Scope(detector_id="latency"), alert)
    assert not covers(Scope(policy_id="db"), alert)
    assert not covers(Scope(integration_id="i-2"), alert)
    assert not covers(Scope(detector_id="cpu"), AlertScope(policy_id="web"))
