"""Resolver behaviour: layer priority, gaps, merging, horizons, answers' shapes, errors."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from services.oncall.resolver import (
    Override,
    Schedule,
    ScheduleError,
    next_handoff,
    oncall,
    person_at,
    shifts,
)

from .helpers import layer, local, schedule, utc

BIZ = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}]
NIGHTS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "17:00", "end": "09:00"}]


def test_first_layer_that_has_someone_and_is_allowed_wins_else_a_gap() -> None:
    zone = "America/New_York"
    s = schedule(
        zone,
        layer("day", "daily", "2026-06-01T09:00", ["d1", "d2"], restrictions=BIZ),
        layer("empty", "weekly", "2026-06-01T09:00", []),
        layer("night", "weekly", "2026-06-01T09:00", ["n1"], restrictions=NIGHTS),
    )
    # 2026-06-05 is a Friday: day until 17:00, night until Saturday 09:00, then a gap.
    final = shifts(s, local(zone, 2026, 6, 5, 8), local(zone, 2026, 6, 8, 10))
    got = [
        (
            x.start.astimezone(local(zone, 2026, 1, 1).tzinfo).strftime("%a %H:%M"),
            x.person_id,
            x.layer,
        )
        for x in final.segments
    ]
    assert got == [
        ("Fri 08:00", "n1", "night"),
        ("Fri 09:00", "d1", "day"),
        ("Fri 17:00", "n1", "night"),
        ("Sat 09:00", None, None),
        ("Mon 09:00", "d2", "day"),
    ]
    gap = final.segments[3]
    assert gap.source is None and gap.override_id is None
    total = timedelta(days=3, hours=2)
    assert final.coverage == pytest.approx(1 - (gap.end - gap.start) / total)
    weekend = oncall(s, local(zone, 2026, 6, 6, 12))
    assert (weekend.person, weekend.shift_start, weekend.shift_end) == (None, gap.start, gap.end)
    assert weekend.next.person == "d2" and weekend.next.start == local(zone, 2026, 6, 8, 9)


def test_rotation_is_projected_backwards_before_its_handoff() -> None:
    s = schedule("UTC", layer("p", "daily", "2026-06-10T09:00", ["a", "b", "c"]))
    assert person_at(s, utc(2026, 6, 10, 9)) == "a"
    assert person_at(s, utc(2026, 6, 10, 8, 59)) == "c"
    assert person_at(s, utc(2026, 6, 8, 10)) == "b"


def test_nobody_before_the_first_effective_from_but_overrides_still_apply() -> None:
    start = utc(2026, 6, 1)
    s = Schedule(
        timezone="UTC",
        layers=[layer("p", "daily", "2026-06-10T09:00", ["a"])],
        effective_from=start,
        overrides=[
            Override(
                id="o",
                person_id="z",
                start=start - timedelta(hours=2),
                end=start - timedelta(hours=1),
            )
        ],
    )
    assert person_at(s, start - timedelta(hours=3)) is None
    assert person_at(s, start - timedelta(minutes=90)) == "z"
    assert person_at(s, start) == "a"
    # The segment starts with the configuration.
    assert oncall(s, start + timedelta(days=3)).shift_start == start


def test_same_person_consecutive_turns_merge_into_one_segment() -> None:
    s = schedule("UTC", layer("p", "daily", "2026-06-01T09:00", ["a", "a", "b"]))
    now = oncall(s, utc(2026, 6, 1, 12))
    assert (now.shift_start, now.shift_end) == (utc(2026, 6, 1, 9), utc(2026, 6, 3, 9))
    assert now.next.person == "b" and now.next.start == utc(2026, 6, 3, 9)
    h = next_handoff(s, utc(2026, 6, 1, 12))
    assert (h.at, h.from_person, h.to_person) == (utc(2026, 6, 3, 9), "a", "b")


def test_next_skips_segments_of_the_same_person_from_another_source() -> None:
    s = schedule(
        "UTC",
        layer("p", "daily", "2026-06-01T00:00", ["a", "b"]),
        overrides=[
            Override(id="o1", person_id="a", start=utc(2026, 6, 2, 0), end=utc(2026, 6, 2, 6))
        ],
    )
    now = oncall(s, utc(2026, 6, 1, 12))
    assert (now.person, now.source, now.shift_end) == ("a", "layer", utc(2026, 6, 2))
    assert now.next.person == "b" and now.next.start == utc(2026, 6, 2, 6)


def test_segments_beyond_the_search_horizon_are_open_ended() -> None:
    s = schedule("UTC", layer("p", "weekly", "2026-06-01T00:00", ["solo"]))
    now = oncall(s, utc(2026, 6, 1, 12))
    assert (now.person, now.shift_start, now.shift_end, now.next) == ("solo", None, None, None)
    assert next_handoff(s, utc(2026, 6, 1)) is None
    empty = Schedule(timezone="UTC")
    nobody = oncall(empty, utc(2026, 6, 1))
    assert (nobody.person, nobody.source, nobody.next) == (None, None, None)
    assert shifts(empty, utc(2026, 1, 1), utc(2026, 2, 1)).coverage == 0.0


def test_answers_have_the_spec_shapes() -> None:
    s = schedule(
        "UTC",
        layer("p", "daily", "2026-06-01T09:00", ["a", "b"]),
        overrides=[
            Override(id="o", person_id="z", start=utc(2026, 6, 1, 10), end=utc(2026, 6, 1, 11))
        ],
    )
    body = oncall(s, utc(2026, 6, 1, 10, 30)).to_dict("s1")
    assert body == {
        "schedule_id": "s1",
        "at": "2026-06-01T10:30:00+00:00",
        "person": "z",
        "source": "override",
        "layer": None,
        "override_id": "o",
        "shift_start": "2026-06-01T10:00:00+00:00",
        "shift_end": "2026-06-01T11:00:00+00:00",
        "next": {"person": "a", "start": "2026-06-01T11:00:00+00:00"},
    }
    final = shifts(s, utc(2026, 6, 1, 9), utc(2026, 6, 1, 12)).to_dict()
    assert final["coverage"] == 1.0
    assert final["shifts"][0] == {
        "start": "2026-06-01T09:00:00+00:00",
        "end": "2026-06-01T10:00:00+00:00",
        "person_id": "a",
        "source": "layer",
        "layer": "p",
        "override_id": None,
    }


def test_person_at_agrees_with_oncall() -> None:
    s = schedule(
        "Europe/London", layer("p", "hourly", "2026-03-29T00:00", ["a", "b", "c"], length=2)
    )
    t = utc(2026, 3, 28, 20)
    for _ in range(30):
        assert person_at(s, t) == oncall(s, t).person
        t += timedelta(minutes=37)


def test_invalid_queries_raise_schedule_errors() -> None:
    s = schedule("UTC", layer("p", "daily", "2026-06-01T09:00", ["a"]))
    with pytest.raises(ScheduleError, match="at: must include a UTC offset"):
        oncall(s, utc(2026, 1, 1).replace(tzinfo=None))
    with pytest.raises(ScheduleError, match="until: range longer than 366 days"):
        shifts(s, utc(2026, 1, 1), utc(2027, 1, 3))
    with pytest.raises(ScheduleError, match="until: must be after since"):
        shifts(s, utc(2026, 1, 1), utc(2026, 1, 1))
    with pytest.raises(ScheduleError) as caught:
        shifts(s, "yesterday", utc(2026, 1, 1).replace(tzinfo=None))  # type: ignore[arg-type]
    assert [e.field for e in caught.value.errors] == ["since", "until"]
    assert shifts(s, utc(2026, 1, 1), utc(2027, 1, 2)).segments  # exactly 366 days is fine


def test_the_resolver_never_reads_a_clock() -> None:
    package = Path(__file__).resolve().parents[3] / "services" / "oncall" / "schedule"
    clock = re.compile(r"\.now\(|\.utcnow\(|\.today\(|time\.time\(|monotonic\(|perf_counter\(")
    offenders = [p.name for p in package.glob("*.py") if clock.search(p.read_text())]
    assert offenders == []
