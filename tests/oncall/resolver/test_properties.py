"""Property-based tests of the resolver across DST-observing and fixed zones.

Zones: America/New_York and Europe/London (1-hour DST at different dates and
wall times), Australia/Lord_Howe (a 30-minute DST shift), Asia/Kolkata (a
half-hour offset, no DST) and UTC. Handoffs and restriction times are biased
towards the small hours so DST gaps and ambiguous hours come up often, and
ranges are biased towards transition days.

``ONCALL_PROPERTY_EXAMPLES`` raises the example count for a deeper run
(default 120 per property keeps the suite fast).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, time, timedelta
from unittest.mock import patch
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.oncall.resolver import (
    DAYS,
    Layer,
    Override,
    Restriction,
    Revision,
    Rotation,
    Schedule,
    oncall,
    shifts,
)

from .reference import who

ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
PEOPLE = ["ann", "bob", "cy", "dee"]
# Days on which the tested zones change offset (local dates), 2025-2026.
TRANSITIONS = [
    datetime(2025, 3, 9),
    datetime(2025, 11, 2),
    datetime(2026, 3, 8),
    datetime(2026, 11, 1),  # NY
    datetime(2025, 3, 30),
    datetime(2025, 10, 26),
    datetime(2026, 3, 29),
    datetime(2026, 10, 25),
    datetime(2025, 4, 6),
    datetime(2025, 10, 5),
    datetime(2026, 4, 5),
    datetime(2026, 10, 4),  # LH
]
US = timedelta(microseconds=1)

PROFILE = settings(
    max_examples=int(os.environ.get("ONCALL_PROPERTY_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

small_hours = st.one_of(st.sampled_from([0, 1, 2, 3]), st.integers(0, 23))
minutes = st.one_of(st.sampled_from([0, 15, 30, 45]), st.integers(0, 59))


@st.composite
def wall_times(draw: st.DrawFn) -> time:
    return time(draw(small_hours), draw(minutes))


@st.composite
def handoffs(draw: st.DrawFn) -> datetime:
    base = draw(st.sampled_from(TRANSITIONS)) + timedelta(days=draw(st.integers(-40, 40)))
    return base.replace(hour=draw(small_hours), minute=draw(minutes))


@st.composite
def rotations(draw: st.DrawFn) -> Rotation:
    kind = draw(st.sampled_from(["hourly", "daily", "weekly", "custom"]))
    return Rotation(
        type=kind,
        handoff=draw(handoffs()),
        participants=tuple(draw(st.lists(st.sampled_from(PEOPLE), max_size=4))),
        length=draw(st.integers(1, 3)),
        shift_seconds=(
            draw(st.sampled_from([3600, 5400, 12 * 3600, 86_400 + 1800, 3 * 86_400]))
            if kind == "custom"
            else None
        ),
    )


@st.composite
def restrictions(draw: st.DrawFn) -> Restriction:
    days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
    start = draw(wall_times())
    end = draw(st.one_of(st.just(start), wall_times()))
    return Restriction(days=tuple(days), start=start, end=end)


@st.composite
def layer_lists(draw: st.DrawFn) -> tuple[Layer, ...]:
    n = draw(st.integers(0, 3))
    return tuple(
        Layer(
            name=f"L{i}",
            rotation=draw(rotations()),
            restrictions=tuple(draw(st.lists(restrictions(), max_size=2))),
        )
        for i in range(n)
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[Schedule, datetime, datetime]:
    zone = draw(st.sampled_from(ZONES))
    tz = ZoneInfo(zone)
    day = draw(st.sampled_from(TRANSITIONS)) + timedelta(days=draw(st.integers(-3, 1)))
    # Often start in the small hours, in either occurrence of a repeated hour.
    minutes = draw(st.one_of(st.integers(0, 24 * 60), st.integers(50, 190)))
    wall = day + timedelta(minutes=minutes)
    since = wall.replace(tzinfo=tz, fold=draw(st.integers(0, 1))).astimezone(UTC)
    until = since + timedelta(minutes=draw(st.integers(1, 6 * 24 * 60)))
    overrides = []
    for i in range(draw(st.integers(0, 3))):
        start = since + timedelta(minutes=draw(st.integers(-600, 6 * 24 * 60)))
        overrides.append(
            Override(
                id=f"o{i}",
                person_id=draw(st.sampled_from(PEOPLE)),
                start=start,
                end=start + timedelta(minutes=draw(st.integers(1, 3 * 24 * 60))),
                created_at=draw(st.sampled_from([None, since, since + timedelta(hours=1)])),
                sequence=draw(st.integers(0, 2)),
            )
        )
    history: tuple[Revision, ...] = ()
    effective_from = None
    if draw(st.booleans()):
        history = (Revision(timezone=zone, layers=draw(layer_lists())),)
        effective_from = since + timedelta(minutes=draw(st.integers(0, 4 * 24 * 60)))
    schedule = Schedule(
        timezone=zone,
        layers=draw(layer_lists()),
        effective_from=effective_from,
        history=history,
        overrides=tuple(overrides),
    )
    return schedule, since, until


def _key(seg):  # noqa: ANN001, ANN202 - test helper
    return (seg.person_id, seg.source, seg.layer, seg.override_id)


@PROFILE
@given(cases())
def test_segments_cover_the_range_contiguously_and_match_the_reference(case) -> None:  # noqa: ANN001
    schedule, since, until = case
    final = shifts(schedule, since, until)
    segs = final.segments
    assert segs[0].start == since and segs[-1].end == until
    for seg in segs:
        assert seg.start < seg.end, "a segment of zero or negative length"
    for prev, seg in zip(segs, segs[1:], strict=False):
        assert prev.end == seg.start, "segments must be contiguous and non-overlapping"
        assert _key(prev) != _key(seg), "adjacent equal segments must be merged"
    covered = sum(((s.end - s.start) for s in segs if s.person_id is not None), timedelta())
    assert abs(final.coverage - covered / (until - since)) < 1e-9
    # Every segment agrees with the naive reference at its first and last microsecond.
    for seg in segs[:40]:
        assert who(schedule, seg.start) == _key(seg), f"at start {seg.start}"
        assert who(schedule, seg.end - US) == _key(seg), f"just before end {seg.end}"


@PROFILE
@given(cases(), st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=4))
def test_oncall_at_equals_the_segment_of_shifts_containing_it(case, fractions) -> None:  # noqa: ANN001
    schedule, since, until = case
    segs = shifts(schedule, since, until).segments
    for f in fractions:
        span = (until - since) // US
        at = since + US * min(int(span * f), span - 1)
        seg = next(s for s in segs if s.start <= at < s.end)
        now = oncall(schedule, at)
        assert (now.person, now.source, now.layer, now.override_id) == _key(seg)
        # The range clips segments; oncall reports the whole one.
        if seg.start > since:
            assert now.shift_start == seg.start
        else:
            assert now.shift_start is None or now.shift_start <= seg.start
        if seg.end < until:
            assert now.shift_end == seg.end
        else:
            assert now.shift_end is None or now.shift_end >= seg.end
        # The next person is the first later segment of shifts with another person.
        later = [s for s in segs if s.start >= seg.end and s.person_id != seg.person_id]
        if later:
            assert now.next is not None
            assert now.next.start == later[0].start and now.next.person == later[0].person_id


@PROFILE
@given(
    zone=st.sampled_from(ZONES),
    kind=st.sampled_from(["daily", "weekly"]),
    length=st.integers(1, 2),
    first=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31)),
)
def test_a_09_00_handoff_stays_at_09_00_local_across_dst(zone, kind, length, first) -> None:  # noqa: ANN001
    tz = ZoneInfo(zone)
    handoff = first.replace(hour=9, minute=0, second=0, microsecond=0)
    schedule = Schedule(
        timezone=zone,
        layers=[
            Layer(
                "primary",
                Rotation(type=kind, handoff=handoff, participants=("a", "b"), length=length),
            )
        ],
    )
    since = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=(first.toordinal() % 300))
    segs = shifts(schedule, since, since + timedelta(days=366)).segments
    assert len(segs) > 20
    period = timedelta(days=length * (7 if kind == "weekly" else 1))
    for seg in segs[1:]:
        local = seg.start.astimezone(tz)
        assert (local.hour, local.minute, local.second) == (9, 0, 0), local
        assert local.weekday() == handoff.weekday() or kind == "daily"
        assert (local.replace(tzinfo=None) - handoff) % period == timedelta()
    # Elapsed lengths differ from the nominal one only by the zone's DST shift.
    for seg in segs[1:-1]:
        assert abs((seg.end - seg.start) - period) <= timedelta(hours=1)


@PROFILE
@given(cases())
def test_precomputed_layer_patterns_equal_direct_computation(case) -> None:  # noqa: ANN001
    """Day-based layers with restrictions replay a precomputed period; with
    patterns disabled the resolver computes shifts and windows directly. Both
    must give the same final schedule (and so, by the test above, the
    reference's answers)."""
    schedule, since, until = case
    with_patterns = shifts(schedule, since, until)
    fresh = Schedule(
        timezone=schedule.timezone,
        layers=schedule.layers,
        effective_from=schedule.effective_from,
        history=schedule.history,
        overrides=schedule.overrides,
    )
    with patch("services.oncall.resolver.restrictions.MAX_PATTERN_PERIOD", 0):
        direct = shifts(fresh, since, until)
    assert direct == with_patterns
