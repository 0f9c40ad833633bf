"""Time zones and DST: gaps, ambiguous times, half-hour shifts, wall-clock handoffs."""

from __future__ import annotations

from datetime import timedelta

from services.oncall.resolver import oncall, shifts

from .helpers import layer, local, schedule, table, utc

NY = "America/New_York"


def test_a_handoff_in_the_spring_forward_gap_starts_at_03_00() -> None:
    """02:30 does not exist on 2026-03-08 in New York: that day's shift starts at
    the first valid instant after the gap, 03:00 EDT; the days around keep 02:30."""
    s = schedule(NY, layer("p", "daily", "2026-03-01T02:30", ["a", "b"]))
    segs = shifts(s, local(NY, 2026, 3, 7, 12), local(NY, 2026, 3, 10)).segments
    assert table(segs, NY) == [
        ("2026-03-07 12:00-0500", "2026-03-08 03:00-0400", "a"),
        ("2026-03-08 03:00-0400", "2026-03-09 02:30-0400", "b"),
        ("2026-03-09 02:30-0400", "2026-03-10 00:00-0400", "a"),
    ]
    assert segs[1].start == utc(2026, 3, 8, 7, 0)


def test_a_handoff_in_the_gap_as_the_rotation_anchor() -> None:
    """An hourly rotation anchored at a non-existent 02:30 starts at 03:00 EDT (the
    first valid instant after the gap) and keeps handing off at :30 on the wall
    clock: 03:30 EDT next, 01:30 EST before, so the shifts on either side of the
    gap last 30 minutes each."""
    s = schedule(NY, layer("p", "hourly", "2026-03-08T02:30", ["a", "b"]))
    now = oncall(s, local(NY, 2026, 3, 8, 3, 10))
    assert now.person == "a" and now.shift_start == utc(2026, 3, 8, 7)
    assert now.shift_end == utc(2026, 3, 8, 7, 30)
    before = oncall(s, local(NY, 2026, 3, 8, 1, 45))
    assert before.person == "b" and before.shift_start == utc(2026, 3, 8, 6, 30)
    assert before.shift_end == utc(2026, 3, 8, 7)
    segs = shifts(s, local(NY, 2026, 3, 8, 0, 30), local(NY, 2026, 3, 8, 5, 30)).segments
    assert table(segs, NY) == [
        ("2026-03-08 00:30-0500", "2026-03-08 01:30-0500", "a"),
        ("2026-03-08 01:30-0500", "2026-03-08 03:00-0400", "b"),
        ("2026-03-08 03:00-0400", "2026-03-08 03:30-0400", "a"),
        ("2026-03-08 03:30-0400", "2026-03-08 04:30-0400", "b"),
        ("2026-03-08 04:30-0400", "2026-03-08 05:30-0400", "a"),
    ]


def test_an_ambiguous_handoff_takes_the_first_occurrence() -> None:
    """01:30 happens twice on 2026-11-01 in New York; the handoff is the first
    (01:30 EDT, 05:30 UTC), so that day's shift lasts 25 hours."""
    s = schedule(NY, layer("p", "daily", "2026-10-01T01:30", ["a", "b"]))
    segs = shifts(s, local(NY, 2026, 10, 31, 12), local(NY, 2026, 11, 2, 12)).segments
    assert [x.start for x in segs[1:]] == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    assert segs[1].end - segs[1].start == timedelta(hours=25)
    # Asked about the second 01:40, it is still the shift that began at the first 01:30.
    second = local(NY, 2026, 11, 1, 1, 40, fold=1)
    assert second.astimezone(utc(2026, 1, 1).tzinfo) == utc(2026, 11, 1, 6, 40)
    assert oncall(s, second).shift_start == utc(2026, 11, 1, 5, 30)


def test_lord_howe_half_hour_dst() -> None:
    """Australia/Lord_Howe moves 30 minutes: 02:00 → 02:30 on 2026-10-04 and
    02:00 → 01:30 on 2026-04-05. A 02:15 handoff lands on 02:30; a 01:45 handoff
    on the April day takes its first occurrence (+11:00)."""
    zone = "Australia/Lord_Howe"
    spring = schedule(zone, layer("p", "daily", "2026-09-01T02:15", ["a", "b"]))
    segs = shifts(spring, local(zone, 2026, 10, 3, 12), local(zone, 2026, 10, 5, 12)).segments
    assert table(segs, zone)[1:] == [
        ("2026-10-04 02:30+1100", "2026-10-05 02:15+1100", "b"),
        ("2026-10-05 02:15+1100", "2026-10-05 12:00+1100", "a"),
    ]
    assert segs[1].end - segs[1].start == timedelta(hours=23, minutes=45)
    autumn = schedule(zone, layer("p", "daily", "2026-03-01T01:45", ["a", "b"]))
    segs = shifts(autumn, local(zone, 2026, 4, 4, 12), local(zone, 2026, 4, 6, 12)).segments
    assert segs[1].start == utc(2026, 4, 4, 14, 45)  # 01:45 at +11:00
    assert segs[1].end - segs[1].start == timedelta(hours=24, minutes=30)


def test_half_hour_offset_zone_without_dst() -> None:
    """Asia/Kolkata is +05:30 all year: 09:00 local is 03:30 UTC every day."""
    zone = "Asia/Kolkata"
    s = schedule(zone, layer("p", "daily", "2026-01-01T09:00", ["a", "b"]))
    segs = shifts(s, utc(2026, 3, 1), utc(2026, 3, 31)).segments
    assert all((x.start.hour, x.start.minute) == (3, 30) for x in segs[1:])
    assert all(x.end - x.start == timedelta(days=1) for x in segs[1:-1])


def test_hourly_and_custom_rotations_step_on_the_wall_clock() -> None:
    """Hourly and custom shifts hand off at the same local times all year (SPEC):
    on the fall-back night a 1-hour rotation's 01:00 shift lasts 2 hours (7 wall
    hours, 7 shifts, 8 elapsed hours), and a 12-hour custom rotation handing off
    at 07:00/19:00 EDT still hands off at 07:00/19:00 EST, the 19:00 shift before
    the change lasting 13 hours. (Wall-time test of the old elapsed-time rule.)"""
    hourly = schedule(NY, layer("p", "hourly", "2026-11-01T00:00", ["a", "b"]))
    segs = shifts(hourly, local(NY, 2026, 10, 31, 22), local(NY, 2026, 11, 1, 5)).segments
    assert len(segs) == 7
    assert [x.end - x.start for x in segs] == [timedelta(hours=h) for h in (1, 1, 1, 2, 1, 1, 1)]
    assert [start[11:] for start, _, _ in table(segs, NY)] == [
        "22:00-0400",
        "23:00-0400",
        "00:00-0400",
        "01:00-0400",
        "02:00-0500",
        "03:00-0500",
        "04:00-0500",
    ]
    custom = schedule(
        NY, layer("p", "custom", "2026-10-30T07:00", ["a", "b"], shift_seconds=12 * 3600)
    )
    segs = shifts(custom, local(NY, 2026, 10, 31, 7), local(NY, 2026, 11, 2, 7)).segments
    starts = [start[11:] for start, _, _ in table(segs, NY)]
    assert starts == ["07:00-0400", "19:00-0400", "07:00-0500", "19:00-0500"]
    assert [x.end - x.start for x in segs] == [timedelta(hours=h) for h in (12, 13, 12, 12)]


def test_restriction_windows_follow_the_wall_clock_across_dst() -> None:
    """A Sunday 00:00-06:00 window lasts 5 elapsed hours on the spring-forward
    Sunday and 7 on the fall-back one; 00:00-01:30 on the fall-back Sunday ends
    at the first 01:30."""
    early = [{"days": ["sun"], "start": "00:00", "end": "06:00"}]
    s = schedule(NY, layer("p", "weekly", "2026-01-05T09:00", ["a"], restrictions=early))
    spring = [
        x for x in shifts(s, local(NY, 2026, 3, 7), local(NY, 2026, 3, 9)).segments if x.person_id
    ]
    fall = [
        x
        for x in shifts(s, local(NY, 2026, 10, 31), local(NY, 2026, 11, 2)).segments
        if x.person_id
    ]
    assert [x.end - x.start for x in spring] == [timedelta(hours=5)]
    assert [x.end - x.start for x in fall] == [timedelta(hours=7)]
    short = schedule(
        NY,
        layer(
            "p",
            "weekly",
            "2026-01-05T09:00",
            ["a"],
            restrictions=[{"days": ["sun"], "start": "00:00", "end": "01:30"}],
        ),
    )
    seg = [
        x
        for x in shifts(short, local(NY, 2026, 10, 31), local(NY, 2026, 11, 2)).segments
        if x.person_id
    ]
    assert [(x.start, x.end) for x in seg] == [(utc(2026, 11, 1, 4), utc(2026, 11, 1, 5, 30))]


def test_ranges_starting_inside_the_repeated_hour() -> None:
    """Asked from inside the second 01:00-02:00 of a fall-back night, handoffs and
    restriction edges at 01:xx already happened (at the first occurrence): no
    second handoff, and a window that began at the first 01:30 is still open."""
    second_0110 = local(NY, 2026, 11, 1, 1, 10, fold=1)  # 06:10 UTC
    handoff = schedule(NY, layer("p", "daily", "2026-10-01T01:30", ["a", "b"]))
    segs = shifts(handoff, second_0110, local(NY, 2026, 11, 1, 12)).segments
    assert [(x.start, x.person_id) for x in segs] == [(utc(2026, 11, 1, 6, 10), "b")]
    assert oncall(handoff, second_0110).shift_start == utc(2026, 11, 1, 5, 30)
    window = [{"days": ["sun"], "start": "01:30", "end": "03:00"}]
    restricted = schedule(NY, layer("p", "weekly", "2026-01-05T09:00", ["a"], restrictions=window))
    on = [
        (x.start, x.end)
        for x in shifts(restricted, second_0110, local(NY, 2026, 11, 2)).segments
        if x.person_id
    ]
    assert on == [(utc(2026, 11, 1, 6, 10), utc(2026, 11, 1, 8))]
    whole = [
        (x.start, x.end)
        for x in shifts(restricted, local(NY, 2026, 10, 31), local(NY, 2026, 11, 2)).segments
        if x.person_id
    ]
    assert whole == [(utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8))]  # 2.5 elapsed hours


def test_a_handoff_at_the_end_of_the_repeated_hour() -> None:
    """02:00 exists once on the fall-back day (EST, 07:00 UTC): during the second
    01:30 the previous shift is still on."""
    s = schedule(NY, layer("p", "daily", "2026-10-01T02:00", ["a", "b"]))
    second_0130 = local(NY, 2026, 11, 1, 1, 30, fold=1)
    before = oncall(s, second_0130)  # shift 30 since the 2026-10-01 handoff: "a"
    assert (before.person, before.shift_start, before.shift_end) == (
        "a",
        utc(2026, 10, 31, 6),
        utc(2026, 11, 1, 7),
    )
    segs = shifts(s, second_0130, local(NY, 2026, 11, 1, 12)).segments
    assert [(x.start, x.person_id) for x in segs] == [
        (utc(2026, 11, 1, 6, 30), "a"),
        (utc(2026, 11, 1, 7), "b"),
    ]
