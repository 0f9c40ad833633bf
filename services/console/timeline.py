"""PURE: a schedule's final shifts laid out as day rows in a time zone.

Each row is one local calendar day, from its midnight to the next (23 or 25 hours
across a DST change); a segment's `left` and `width` are percentages of its row's
real duration, so a shift is drawn where its instants fall. Gaps stay gaps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from services.console.formatting import parse_instant, rfc3339, zone

PALETTE = 8


@dataclass
class Segment:
    start: datetime
    end: datetime
    person_id: str | None
    source: str | None
    left: float
    width: float
    colour: int


@dataclass
class Row:
    day: date
    start: datetime
    end: datetime
    hours: float
    segments: list[Segment] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)


def colour_of(person_id: str | None) -> int:
    if person_id is None:
        return -1
    return hashlib.sha256(person_id.encode()).digest()[0] % PALETTE


def day_start(day: date, tz_name: str) -> datetime:
    """The first instant of a local day (midnight, or the first valid instant after it)."""
    tz = zone(tz_name)
    local = datetime.combine(day, time(0), tz)
    # a midnight skipped by DST (rare) moves to the instant after the gap
    return local.astimezone(zone("UTC")).astimezone(tz)


def window(first_day: date, days: int, tz_name: str) -> tuple[datetime, datetime]:
    return day_start(first_day, tz_name), day_start(first_day + timedelta(days=days), tz_name)


def rows(shifts: list[dict[str, Any]], first_day: date, days: int, tz_name: str) -> list[Row]:
    tz = zone(tz_name)
    parsed = []
    for s in shifts:
        start, end = parse_instant(s["start"]), parse_instant(s["end"])
        if start is not None and end is not None and start < end:
            parsed.append((start, end, s.get("person_id"), s.get("source")))
    out: list[Row] = []
    for i in range(days):
        day = first_day + timedelta(days=i)
        begin, finish = day_start(day, tz_name), day_start(day + timedelta(days=1), tz_name)
        length = (finish - begin).total_seconds()
        row = Row(day=day, start=begin, end=finish, hours=length / 3600)
        for hour in (0, 6, 12, 18):
            at = datetime.combine(day, time(hour), tz)
            row.ticks.append((round((at - begin).total_seconds() / length * 100, 3), f"{hour:02d}"))
        for start, end, person, source in parsed:
            lo, hi = max(start, begin), min(end, finish)
            if lo >= hi:
                continue
            row.segments.append(
                Segment(
                    start=lo,
                    end=hi,
                    person_id=person,
                    source=source,
                    left=round((lo - begin).total_seconds() / length * 100, 3),
                    width=round((hi - lo).total_seconds() / length * 100, 3),
                    colour=colour_of(person),
                )
            )
        out.append(row)
    return out


def stamp(moment: datetime) -> str:
    return rfc3339(moment)
