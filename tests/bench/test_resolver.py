"""``nsentry bench oncall`` runs end to end (tiny sample counts) and its two sides agree."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bench import resolver
from services.cli import main
from services.oncall.resolver import Schedule, person_at
from tests.oncall.resolver.helpers import utc

pytest.importorskip("recurring_ical_events")


def test_bench_runs_and_prints_the_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "bench", "oncall", "--samples", "40", "--ical-samples", "6", "--rounds", "2",
        "--repeat", "2", "--ical-repeat", "1",
    ]  # fmt: skip
    assert main(args) == 0  # non-zero if the two sides ever disagree
    out = capsys.readouterr().out
    assert "[1/5]" in out and "[5/5]" in out
    assert "answers agree with recurring_ical_events on 6/6 instants" in out
    assert "RATIO oncall at T" in out and "one-year final schedule:" in out


def test_the_ical_rendition_is_the_same_schedule() -> None:
    import recurring_ical_events
    from icalendar import Calendar

    spec = resolver.bench_schedule(seed=3, n_overrides=50)
    schedule = Schedule.from_dict(spec)
    query = recurring_ical_events.of(Calendar.from_ical(resolver.bench_ical(spec)))
    # Hourly over a week that contains overrides, plus both DST changes.
    for start in (utc(2026, 3, 6), utc(2026, 10, 30), utc(2026, 6, 1)):
        for hour in range(0, 24 * 4, 3):
            at = start + timedelta(hours=hour, minutes=17)
            assert resolver.ical_person_at(query, at) == person_at(schedule, at), at
