"""iCalendar export of the final schedule (one VEVENT per on-call segment).

Each non-gap segment of :func:`~.resolve.shifts` becomes an event whose
summary is the person (or their display name), with the source, layer and
override in the description. Segments cut by the export range are extended
to their true bounds (as :func:`~.resolve.oncall` reports them), so an event
does not change when the export window slides. The UID is derived from the
schedule id, the segment's start, person, source, layer and override: the
same shift keeps the same UID across exports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from icalendar import Calendar, Event

from .resolve import Segment, oncall, shifts
from .schedule import Schedule

PRODID = "-//nself//nSentry on-call//EN"


def _uid(schedule: Schedule, segment: Segment) -> str:
    material = "|".join(
        str(x)
        for x in (
            schedule.id,
            segment.start.isoformat(),
            segment.person_id,
            segment.source,
            segment.layer,
            segment.override_id,
        )
    )
    digest = hashlib.sha256(material.encode()).hexdigest()[:24]
    return f"{digest}@{schedule.id or 'schedule'}.oncall.nsentry"


def to_ical(
    schedule: Schedule,
    since: datetime,
    until: datetime,
    *,
    dtstamp: datetime,
    names: Mapping[str, str] | None = None,
) -> bytes:
    """The final schedule over ``[since, until)`` as an iCalendar document.

    ``dtstamp`` (required by RFC 5545) is passed in, never read from a clock;
    ``names`` maps person ids to display names for the event summaries.
    """
    final = shifts(schedule, since, until)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"On call: {schedule.name or schedule.id}")
    cal.add("x-wr-timezone", schedule.timezone)
    segments = list(final.segments)
    for index in (0, len(segments) - 1):
        seg = segments[index]
        if seg.person_id is None:
            continue
        if seg.start == final.since or seg.end == final.until:
            whole = oncall(schedule, seg.start)
            segments[index] = Segment(
                whole.shift_start or seg.start,
                whole.shift_end or seg.end,
                seg.person_id,
                seg.source,
                seg.layer,
                seg.override_id,
            )
    for seg in segments:
        if seg.person_id is None:
            continue
        event = Event()
        event.add("uid", _uid(schedule, seg))
        event.add("dtstamp", dtstamp)
        event.add("dtstart", seg.start)
        event.add("dtend", seg.end)
        event.add("summary", (names or {}).get(seg.person_id, seg.person_id))
        detail = f"layer {seg.layer}" if seg.source == "layer" else f"override {seg.override_id}"
        event.add("description", f"On call ({detail}).")
        event.add("categories", [seg.source or "layer"])
        event.add("x-nsentry-person-id", seg.person_id)
        cal.add_component(event)
    return cal.to_ical()
