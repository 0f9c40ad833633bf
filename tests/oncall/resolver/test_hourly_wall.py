"""Hourly and custom rotations hand off on the wall clock (SPEC, issue 12 item 14).

Every handoff of a year (2026) of hourly and custom rotations in New York,
London and Lord Howe (30-minute DST) is compared with an independent
evaluation of the same rotation: an iCalendar ``VEVENT`` with ``DTSTART;TZID=``
and ``RRULE:FREQ=HOURLY;INTERVAL=n`` (``FREQ=MINUTELY`` for custom lengths that
are not whole hours), expanded by ``recurring_ical_events``.

Where RFC 5545 and the SPEC differ, the SPEC wins, and the test says so:

* **Gap** (spring forward): RFC 5545 reads a non-existent local time with the
  UTC offset *before* the gap, so 02:15 on Lord Howe's spring-forward night is
  02:45 (+11:00), an instant *after* the 02:30 occurrence that follows it
  (recurring_ical_events returns them out of order), and in New York 02:30 and
  03:30 both land on 07:30 UTC. The SPEC puts a handoff that would fall in a
  gap at the first valid instant after it (the transition: 03:00 EDT, 02:30
  +11:00). So a shift whose handoff is in the gap starts at the transition
  (possibly zero-length: the 1-hour 02:00 shift in New York never appears), and
  handoffs stay in order. A handoff at the very start of the gap (02:00 in New
  York) is the transition under both rules.
* **Ambiguous** (fall back): both take the first occurrence (``fold=0``); no
  handoff happens during the repeated hour's second pass, so the shift that
  spans it is longer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from services.oncall.resolver import oncall, shifts

from .helpers import layer, local, schedule, table
from .reference import resolve_wall

NY = "America/New_York"
LONDON = "Europe/London"
LORD_HOWE = "Australia/Lord_Howe"
ZONES = (NY, LONDON, LORD_HOWE)
PEOPLE = ["p0", "p1", "p2"]  # three: a skipped (zero-length) turn never merges its neighbours

# (id, type, length, shift_seconds, RRULE of the same rotation)
ROTATIONS = [
    ("1h", "hourly", 1, None, "FREQ=HOURLY;INTERVAL=1"),
    ("5h", "hourly", 5, None, "FREQ=HOURLY;INTERVAL=5"),
    ("8h", "hourly", 8, None, "FREQ=HOURLY;INTERVAL=8"),
    ("12h", "hourly", 12, None, "FREQ=HOURLY;INTERVAL=12"),
    ("custom-90min", "custom", 1, 5400, "FREQ=MINUTELY;INTERVAL=90"),
    ("custom-2x105min", "custom", 2, 6300, "FREQ=MINUTELY;INTERVAL=210"),
    ("custom-36h", "custom", 1, 36 * 3600, "FREQ=HOURLY;INTERVAL=36"),
]
# Handoff wall times: on the hour, and at :15 / :45 so that 1-hour steps land
# inside every gap (New York 02:00-03:00, London 01:00-02:00, Lord Howe
# 02:00-02:30) and in every repeated period (Lord Howe repeats 01:30-02:00).
HANDOFFS = ["2025-12-01T08:00", "2025-12-01T01:15", "2025-12-01T00:45"]


def ical_occurrences(zone: str, handoff: datetime, rrule: str, a: datetime, b: datetime):
    """Start of every occurrence in ``[a, b)`` of the RRULE, per recurring_ical_events."""
    text = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//nsentry tests//EN",
            "BEGIN:VEVENT",
            "UID:rotation@nsentry.test",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART;TZID={zone}:{handoff:%Y%m%dT%H%M%S}",
            "DURATION:PT1M",
            f"RRULE:{rrule}",
            "SUMMARY:handoff",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )
    calendar = icalendar.Calendar.from_ical(text)
    events = recurring_ical_events.of(calendar).between(a, b)
    return sorted(e["DTSTART"].dt for e in events)


def spec_instant(tz: ZoneInfo, occurrence: datetime) -> tuple[datetime, str]:
    """The SPEC's instant for an RFC 5545 occurrence, and which rule applied."""
    rfc = occurrence.astimezone(UTC)  # fold=0: RFC 5545's reading of the wall time
    wall = occurrence.replace(tzinfo=None)
    if rfc.astimezone(tz).replace(tzinfo=None) != wall:
        # In a gap: RFC 5545 uses the offset before the gap; SPEC takes the
        # first valid instant after it (reference.resolve_wall walks to it).
        spec = resolve_wall(tz, wall)
        return spec, ("gap-moved" if spec != rfc else "gap-same")
    if occurrence.replace(fold=1).astimezone(UTC) != rfc:
        return rfc, "ambiguous"  # both: the first occurrence
    return rfc, "plain"


@cache  # the DST-rule test below reuses some of the years
def expected_year(zone: str, kind: str, length: int, seconds: int | None, rrule: str, handoff: str):
    """The year's segments from the iCalendar evaluation with the SPEC rules applied."""
    tz = ZoneInfo(zone)
    anchor = datetime.fromisoformat(handoff)
    step = timedelta(seconds=(3600 if kind == "hourly" else seconds) * length)
    since, until = datetime(2026, 1, 1, tzinfo=tz), datetime(2027, 1, 1, tzinfo=tz)
    handoffs: list[tuple[datetime, str]] = []
    rules: dict[str, int] = {}
    for occurrence in ical_occurrences(zone, anchor, rrule, since - 2 * step, until + 2 * step):
        k, rest = divmod(occurrence.replace(tzinfo=None) - anchor, step)
        assert not rest  # recurring_ical_events steps on the wall clock, like the SPEC
        instant, rule = spec_instant(tz, occurrence)
        rules[rule] = rules.get(rule, 0) + 1
        handoffs.append((instant, PEOPLE[k % len(PEOPLE)]))
    starts = [t for t, _ in handoffs]
    assert starts == sorted(starts)  # SPEC's rules keep handoffs in order
    turns = [  # a turn whose handoff and the next meet in a gap is skipped
        (start, end, person)
        for (start, person), (end, _) in zip(handoffs, handoffs[1:], strict=False)
        if start < end
    ]
    clipped = [(max(s, since), min(e, until), p) for s, e, p in turns if s < until and e > since]
    return since, until, clipped, turns, rules


@pytest.mark.parametrize("handoff", HANDOFFS)
@pytest.mark.parametrize(("kind", "length", "seconds", "rrule"), [r[1:] for r in ROTATIONS],
                         ids=[r[0] for r in ROTATIONS])  # fmt: skip
@pytest.mark.parametrize("zone", ZONES)
def test_a_year_of_handoffs_matches_icalendar(
    zone: str, kind: str, length: int, seconds: int | None, rrule: str, handoff: str
) -> None:
    since, until, expected, turns, _ = expected_year(zone, kind, length, seconds, rrule, handoff)
    s = schedule(zone, layer("p", kind, handoff, PEOPLE, length=length, shift_seconds=seconds))
    got = [(x.start, x.end, x.person_id) for x in shifts(s, since, until).segments]
    assert got == expected
    # Every handoff, asked one instant at a time: the shift and the next person.
    for (start, end, person), (_, _, following) in zip(turns, turns[1:], strict=False):
        if not since <= start < until:
            continue
        now = oncall(s, start)
        assert (now.person, now.shift_start, now.shift_end) == (person, start, end)
        assert now.next is not None and (now.next.person, now.next.start) == (following, end)


@pytest.mark.parametrize(
    ("zone", "handoff", "moved", "same", "ambiguous"),
    [
        # 02:15 is in New York's gap (RFC: 03:15 EDT, SPEC: 03:00 EDT); 01:15 repeats.
        (NY, "2025-12-01T01:15", 1, 0, 1),
        # 02:00 starts the gap: 03:00 EDT under both rules; 01:00 repeats.
        (NY, "2025-12-01T08:00", 0, 1, 1),
        # 01:15 is in London's gap (RFC: 02:15 BST, SPEC: 02:00 BST) and repeats in October.
        (LONDON, "2025-12-01T01:15", 1, 0, 1),
        # 02:15 is in Lord Howe's 30-minute gap (RFC: 02:45 +11, SPEC: 02:30 +11);
        # 01:15 is before the repeated 01:30-02:00.
        (LORD_HOWE, "2025-12-01T01:15", 1, 0, 0),
        # 01:45 repeats in April; 02:45 exists in October.
        (LORD_HOWE, "2025-12-01T00:45", 0, 0, 1),
        (LORD_HOWE, "2025-12-01T08:00", 0, 1, 0),
    ],
)
def test_the_year_meets_both_dst_rules(
    zone: str, handoff: str, moved: int, same: int, ambiguous: int
) -> None:
    """The comparison above really meets gaps where RFC 5545 and the SPEC differ
    (and where they agree), and ambiguous handoffs: 1-hour steps, so every wall
    time of the day comes up."""
    *_, rules = expected_year(zone, "hourly", 1, None, "FREQ=HOURLY;INTERVAL=1", handoff)
    assert rules.get("gap-moved", 0) == moved
    assert rules.get("gap-same", 0) == same
    assert rules.get("ambiguous", 0) == ambiguous


@pytest.mark.parametrize(
    ("zone", "spring", "fall", "short", "long"),
    [
        (NY, (2026, 3, 7), (2026, 10, 31), timedelta(hours=11), timedelta(hours=13)),
        (LONDON, (2026, 3, 28), (2026, 10, 24), timedelta(hours=11), timedelta(hours=13)),
        # Lord Howe moves 30 minutes: back on 2026-04-05, forward on 2026-10-04.
        (LORD_HOWE, (2026, 10, 3), (2026, 4, 4), timedelta(hours=11.5), timedelta(hours=12.5)),
    ],
)
@pytest.mark.parametrize("kind", ["hourly", "custom"])
def test_a_12_hour_rotation_keeps_08_and_20_local_all_year(
    zone: str,
    spring: tuple[int, int, int],
    fall: tuple[int, int, int],
    short: timedelta,
    long: timedelta,
    kind: str,
) -> None:
    """08:00/20:00 handoffs stay at 08:00/20:00 local after both DST changes; the
    night shift spanning a change is 11 or 13 hours long (11.5 / 12.5 on Lord Howe)."""
    rotation = (
        layer("p", "hourly", "2026-01-01T08:00", ["day", "night"], length=12)
        if kind == "hourly"
        else layer("p", "custom", "2026-01-01T08:00", ["day", "night"], shift_seconds=43_200)
    )
    s = schedule(zone, rotation)
    segs = shifts(s, local(zone, 2026, 1, 1, 8), local(zone, 2027, 1, 1, 8)).segments
    assert len(segs) == 2 * 365
    rows = table(segs, zone)
    assert all(start[11:16] == ("08:00" if p == "day" else "20:00") for start, _, p in rows)
    assert all(end[11:16] == ("20:00" if p == "day" else "08:00") for _, end, p in rows)
    tz = ZoneInfo(zone)
    odd = {
        (x.start.astimezone(tz).date(), x.person_id): x.end - x.start
        for x in segs
        if x.end - x.start != timedelta(hours=12)
    }
    assert odd == {
        (local(zone, *spring).date(), "night"): short,
        (local(zone, *fall).date(), "night"): long,
    }
