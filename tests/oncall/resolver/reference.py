"""A deliberately naive reference for "who is on call at instant t".

It answers one instant at a time straight from the rules in
``docs/schedules.md`` with ``datetime`` and ``zoneinfo`` only: no zone
tables, no bisect, no interval algebra, no merging. The property tests check
the real resolver against it, so a mistake would have to be made twice, in
two different styles, to go unnoticed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.oncall.resolver import DAYS, Restriction, Rotation, RotationType, Schedule

Answer = tuple[str | None, str | None, str | None, str | None]
GAP: Answer = (None, None, None, None)


def resolve_wall(tz: ZoneInfo, wall: datetime) -> datetime:
    """Instant of a wall time: first occurrence if ambiguous, first valid instant if in a gap."""
    candidate = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if candidate.astimezone(tz).replace(tzinfo=None) == wall:
        return candidate
    # In a gap: walk forward a minute at a time to the first wall time that
    # exists; that wall time's instant is the transition (tzdata transitions
    # in the tested zones fall on whole minutes).
    probe = wall.replace(second=0, microsecond=0)
    while True:
        probe += timedelta(minutes=1)
        instant = probe.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == probe:
            return instant


def rotation_person(rotation: Rotation, tz: ZoneInfo, t: datetime) -> str | None:
    """Participant whose turn contains ``t`` (rotation projected both ways)."""
    people = rotation.participants
    if not people:
        return None
    # Every type steps on the wall clock from the handoff (SPEC: hourly and
    # custom included, as iCalendar recurrences in a TZID do).
    seconds = {
        RotationType.HOURLY: 3600,
        RotationType.DAILY: 86_400,
        RotationType.WEEKLY: 7 * 86_400,
    }.get(rotation.type, rotation.shift_seconds or 0)
    step = timedelta(seconds=seconds * rotation.length)

    def start(k: int) -> datetime:
        return resolve_wall(tz, rotation.handoff + step * k)

    local = t.astimezone(tz).replace(tzinfo=None)
    k = (local - rotation.handoff) // step
    while start(k) > t:
        k -= 1
    while start(k + 1) <= t:
        k += 1
    return people[k % len(people)]


def restriction_allows(restrictions: tuple[Restriction, ...], tz: ZoneInfo, t: datetime) -> bool:
    """True if some restriction's window (possibly begun the day before) contains ``t``."""
    if not restrictions:
        return True
    today: date = t.astimezone(tz).date()
    for r in restrictions:
        for day in (today - timedelta(days=1), today):
            if DAYS[day.weekday()] not in r.days:
                continue
            begin = resolve_wall(tz, datetime.combine(day, r.start))
            end_day = day if r.end > r.start else day + timedelta(days=1)
            end = resolve_wall(tz, datetime.combine(end_day, r.end))
            if begin <= t < end:
                return True
    return False


def who(schedule: Schedule, t: datetime) -> Answer:
    """``(person, source, layer, override_id)`` at ``t``."""
    active = [o for o in schedule.overrides if o.start <= t < o.end]
    if active:
        oldest = datetime(1, 1, 2, tzinfo=UTC)
        best = max(active, key=lambda o: (o.created_at or oldest, o.sequence, o.id))
        return (best.person_id, "override", None, best.id)
    revision = schedule.revision_at(t)
    if revision is None:
        return GAP
    tz = ZoneInfo(revision.timezone)
    for layer in revision.layers:
        person = rotation_person(layer.rotation, tz, t)
        if person is not None and restriction_allows(layer.restrictions, tz, t):
            return (person, "layer", layer.name, None)
    return GAP
