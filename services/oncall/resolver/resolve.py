"""The one on-call resolver: who is on call, over an instant or a range.

Every answer (``oncall`` now or at any ``at``, the ``shifts`` of a range, the
next handoff, GraphQL, escalation) comes from :func:`_resolve`, which lays
the final schedule over ``[a, b)`` as contiguous segments:

1. overrides claim their spans, newest first (see :mod:`.overrides`);
2. in each configuration revision's part of the range, layers in priority
   order claim what is still free where their rotation has someone *and*
   their restrictions allow it (:mod:`.rotation`, :mod:`.restrictions`);
3. what nobody claimed is a gap (``person_id`` None); adjacent segments
   with the same person, source, layer and override merge.

It works on sorted integer boundaries (microseconds), never by stepping
through time: a range is split at the zone's offset transitions
(:meth:`.zones.Zone.pieces`), where wall-time boundaries are plain
arithmetic, and a layer with restrictions replays its precomputed
period (:class:`.restrictions.Pattern`). A year of final schedule costs a few
milliseconds. It reads no clock: ``at``/``since``/``until`` are always given.
Results are plain frozen dataclasses with UTC datetimes and a ``to_dict`` in
the SPEC's JSON shape.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Literal

from . import coerce
from .coerce import EARLIEST, LATEST
from .errors import FieldError, ScheduleError
from .intervals import claim, clip, intersect
from .overrides import CompiledOverrides
from .restrictions import Mask, Pattern, allowed, mask_ends, weekly_mask
from .rotation import CompiledRotation
from .schedule import Schedule
from .zones import DAY, HOUR, Zone, from_us, get_zone, to_us

__all__ = [
    "MAX_RANGE",
    "SEARCH_HORIZON",
    "FinalSchedule",
    "Handoff",
    "NextOnCall",
    "OnCall",
    "Segment",
    "next_handoff",
    "oncall",
    "person_at",
    "shifts",
]

Source = Literal["override", "layer"]

MAX_RANGE = timedelta(days=366)
"""Longest range :func:`shifts` accepts (the SPEC's limit for ``/shifts``)."""
SEARCH_HORIZON = timedelta(days=366)
"""How far :func:`oncall` looks back for a shift's start and ahead for its end / the next person."""

_HORIZON = SEARCH_HORIZON // timedelta(microseconds=1)
_MIN = to_us(EARLIEST)
_MAX = to_us(LATEST)
_MAX_RANGE = MAX_RANGE // timedelta(microseconds=1)

# A segment key: (person_id, source, layer, override_id); the gap is all None.
Key = tuple[str | None, str | None, str | None, str | None]
GAP: Key = (None, None, None, None)
_first = itemgetter(0)


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Segment:
    """A contiguous piece of the final schedule; a gap has ``person_id`` None."""

    start: datetime
    end: datetime
    person_id: str | None
    source: Source | None
    layer: str | None
    override_id: str | None

    def to_dict(self) -> dict[str, Any]:
        """``{start, end, person_id, source, layer, override_id}``."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "person_id": self.person_id,
            "source": self.source,
            "layer": self.layer,
            "override_id": self.override_id,
        }


@dataclass(frozen=True, slots=True)
class FinalSchedule:
    """The final schedule over ``[since, until)``: segments cover it exactly."""

    since: datetime
    until: datetime
    segments: tuple[Segment, ...]
    coverage: float
    """Fraction of the range with someone on call (0.0 to 1.0)."""

    def to_dict(self) -> dict[str, Any]:
        """``{since, until, shifts: [...], coverage}``."""
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "shifts": [s.to_dict() for s in self.segments],
            "coverage": self.coverage,
        }


@dataclass(frozen=True, slots=True)
class NextOnCall:
    """The next change of person: who (None = a gap) and from when."""

    person: str | None
    start: datetime

    def to_dict(self) -> dict[str, Any]:
        """``{person, start}``."""
        return {"person": self.person, "start": self.start.isoformat()}


@dataclass(frozen=True, slots=True)
class OnCall:
    """Who is on call at ``at``, why, for how long, and who comes next.

    ``shift_start``/``shift_end`` bound the final-schedule segment containing
    ``at`` (the same segment :func:`shifts` reports); None when it extends
    beyond :data:`SEARCH_HORIZON`. ``next`` is the first later segment with
    a different person (None if there is none within the horizon).
    """

    at: datetime
    person: str | None
    source: Source | None
    layer: str | None
    override_id: str | None
    shift_start: datetime | None
    shift_end: datetime | None
    next: NextOnCall | None

    def to_dict(self, schedule_id: str | None = None) -> dict[str, Any]:
        """The SPEC's ``/oncall`` answer."""
        return {
            "schedule_id": schedule_id,
            "at": self.at.isoformat(),
            "person": self.person,
            "source": self.source,
            "layer": self.layer,
            "override_id": self.override_id,
            "shift_start": None if self.shift_start is None else self.shift_start.isoformat(),
            "shift_end": None if self.shift_end is None else self.shift_end.isoformat(),
            "next": None if self.next is None else self.next.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Handoff:
    """The next instant the on-call person changes."""

    at: datetime
    from_person: str | None
    to_person: str | None


# ---------------------------------------------------------------------------
# Compilation (cached on the schedule)
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Layer:
    name: str
    rotation: CompiledRotation  # labelled with each participant's segment key
    mask: Mask | None
    ends: tuple[int, ...]
    pattern: Pattern | None  # rotation ∩ restrictions, precomputed (repeats in wall time)


@dataclass(frozen=True, slots=True)
class _Revision:
    start: int
    zone: Zone
    layers: tuple[_Layer, ...]


@dataclass(frozen=True, slots=True)
class _Compiled:
    starts: list[int]
    revisions: tuple[_Revision, ...]
    overrides: CompiledOverrides
    scale: int  # typical length of a stretch of the final schedule: oncall()'s first window


def _scale(layers: tuple[_Layer, ...]) -> int:
    """The shortest shift, restriction window or gap between windows, within 1 hour..1 day."""
    lengths = [DAY]
    for layer in layers:
        lengths.append(layer.rotation.step)
        mask = layer.mask or ()
        lengths.extend(e - s for s, e in mask)
        lengths.extend(b[0] - a[1] for a, b in zip(mask, mask[1:], strict=False))
    return max(HOUR, min(lengths))


def _compile(schedule: Schedule) -> _Compiled:
    compiled = schedule._cache.get("compiled")
    if compiled is not None:
        return compiled
    revisions = []
    for rev in schedule.revisions:
        zone = get_zone(rev.timezone)
        layers = []
        for layer in rev.layers:
            labels = tuple((p, "layer", layer.name, None) for p in layer.rotation.participants)
            rotation = CompiledRotation.build(layer.rotation, zone, labels)
            mask = weekly_mask(layer.restrictions)
            pattern = None if mask is None else Pattern.build(rotation, mask)
            layers.append(_Layer(layer.name, rotation, mask, mask_ends(mask or ()), pattern))
        start = _MIN - 2 * _HORIZON if rev.effective_from is None else to_us(rev.effective_from)
        revisions.append(_Revision(start, zone, tuple(layers)))
    compiled = _Compiled(
        [r.start for r in revisions],
        tuple(revisions),
        CompiledOverrides.build(schedule.overrides),
        min(_scale(r.layers) for r in revisions),
    )
    schedule._cache["compiled"] = compiled
    return compiled


# ---------------------------------------------------------------------------
# The resolver
# ---------------------------------------------------------------------------
def _resolve(c: _Compiled, a: int, b: int) -> list[list[Any]]:
    """The final schedule over ``[a, b)`` as merged ``[start, end, key]`` covering it exactly."""
    claimed: list[tuple[int, int, Key]] = []
    free = [(a, b)]
    for s, e, key in c.overrides.claims(a, b):
        if not free:
            break
        taken, free = claim(free, [(s, e, key)])
        claimed.extend(taken)

    starts = c.starts
    n_revisions = len(starts)
    i = bisect_right(starts, a) - 1 if n_revisions > 1 else 0
    if i < 0:
        i = 0
    while free and i < n_revisions and starts[i] < b:
        rev = c.revisions[i]
        pb = starts[i + 1] if i + 1 < n_revisions else b
        pfree = free if rev.start <= a and pb >= b else clip(free, rev.start, pb)
        i += 1
        if not pfree or not rev.layers:
            continue
        pieces = rev.zone.pieces(pfree[0][0], pfree[-1][1])
        # Within a piece wall times are instants + offset (see Zone.pieces).
        for piece_lo, piece_hi, offset, floor in pieces:
            sub = pfree if len(pieces) == 1 else clip(pfree, piece_lo, piece_hi)
            for layer in rev.layers:
                if not sub:
                    break
                lo, hi = sub[0][0], sub[-1][1]
                if layer.pattern is not None:
                    taken, sub = claim(sub, layer.pattern.items(lo, hi, offset, floor))
                    claimed.extend(taken)
                    continue
                items = layer.rotation.shifts(lo, hi, offset, floor)
                if layer.mask is not None and items:
                    items = intersect(items, allowed(layer.mask, layer.ends, lo, hi, offset, floor))
                taken, sub = claim(sub, items)
                claimed.extend(taken)

    claimed.sort(key=_first)
    out: list[list[Any]] = []
    cur = a
    for s, e, key in claimed:
        if s > cur:
            out.append([cur, s, GAP])
        elif out and (out[-1][2] is key or out[-1][2] == key):
            out[-1][1] = e
            cur = e
            continue
        out.append([s, e, key])
        cur = e
    if cur < b:
        out.append([cur, b, GAP])
    return out


def _stitch(left: list[list[Any]], right: list[list[Any]]) -> list[list[Any]]:
    """Join the segments of two adjacent ranges, merging at the seam if they match."""
    if left[-1][2] == right[0][2]:
        left[-1][1] = right[0][1]
        right = right[1:]
    left.extend(right)
    return left


def _locate(c: _Compiled, t: int) -> tuple[list[list[Any]], int, int | None, int, int]:
    """Segments around ``t``: (segments, index of t's, index of the next person's, lo, hi).

    Starts with a window of twice the schedule's own scale and grows it (×2, only
    resolving the new part: resolution is pointwise, so adjacent ranges
    stitch exactly) until the segment containing ``t`` has a known start and
    end and a later segment with another person is found, or the search
    horizon is reached.
    """
    floor, ceiling = max(t - _HORIZON, _MIN), min(t + _HORIZON, _MAX)
    back = ahead = 2 * c.scale
    lo, hi = max(t - back, floor), min(t + ahead, ceiling)
    segments = _resolve(c, lo, hi)
    while True:
        i = bisect_right(segments, t, key=_first) - 1
        person = segments[i][2][0]
        j: int | None = None
        for k in range(i + 1, len(segments)):
            if segments[k][2][0] != person:
                j = k
                break
        grow_back = segments[i][0] == lo and lo > floor
        grow_ahead = (segments[i][1] == hi or j is None) and hi < ceiling
        if not grow_back and not grow_ahead:
            return segments, i, j, lo, hi
        if grow_back:
            back *= 2
            new_lo = max(t - back, floor)
            segments = _stitch(_resolve(c, new_lo, lo), segments)
            lo = new_lo
        if grow_ahead:
            ahead *= 2
            new_hi = min(t + ahead, ceiling)
            segments = _stitch(segments, _resolve(c, hi, new_hi))
            hi = new_hi


def _instant(value: Any, name: str) -> int:
    if type(value) is datetime and value.tzinfo is not None:
        offset = value.utcoffset()
        if offset is not None:
            t = to_us(value)
            if _MIN <= t < _MAX:
                return t
    errors: list[FieldError] = []
    moment = coerce.aware(value, name, errors)
    if errors:
        raise ScheduleError(errors)
    assert moment is not None
    return to_us(moment)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------
def oncall(schedule: Schedule, at: datetime) -> OnCall:
    """Who is on call at ``at`` (an aware datetime), from which source, until when, and who next.

    Raises :class:`ScheduleError` for a naive or out-of-range ``at``.
    """
    t = _instant(at, "at")
    segments, i, j, lo, hi = _locate(_compile(schedule), t)
    s, e, (person, source, layer, oid) = segments[i]
    return OnCall(
        at=from_us(t),
        person=person,
        source=source,  # type: ignore[arg-type]
        layer=layer,
        override_id=oid,
        shift_start=None if s == lo else from_us(s),
        shift_end=None if e == hi else from_us(e),
        next=None if j is None else NextOnCall(segments[j][2][0], from_us(segments[j][0])),
    )


def next_handoff(schedule: Schedule, at: datetime) -> Handoff | None:
    """The first instant after ``at`` when the on-call person changes (None within the horizon)."""
    t = _instant(at, "at")
    segments, i, j, _, _ = _locate(_compile(schedule), t)
    if j is None:
        return None
    return Handoff(from_us(segments[j][0]), segments[i][2][0], segments[j][2][0])


def person_at(schedule: Schedule, at: datetime) -> str | None:
    """Just the person on call at ``at`` (the cheapest question; escalation asks this)."""
    t = _instant(at, "at")
    return _resolve(_compile(schedule), t, t + 1)[0][2][0]


def shifts(schedule: Schedule, since: datetime, until: datetime) -> FinalSchedule:
    """The final schedule over ``[since, until)`` (at most :data:`MAX_RANGE`), gaps included.

    Segments are contiguous, non-overlapping, non-empty, cover the range
    exactly, and adjacent ones differ in person, source, layer or override.
    Raises :class:`ScheduleError` for naive timestamps, an empty or
    too-long range.
    """
    errors: list[FieldError] = []
    lo = coerce.aware(since, "since", errors)
    hi = coerce.aware(until, "until", errors)
    if lo is not None and hi is not None:
        if not lo < hi:
            errors.append(FieldError("until", "must be after since"))
        elif hi - lo > MAX_RANGE:
            errors.append(FieldError("until", f"range longer than {MAX_RANGE.days} days"))
    if errors:
        raise ScheduleError(errors)
    assert lo is not None and hi is not None
    a, b = to_us(lo), to_us(hi)
    raw = _resolve(_compile(schedule), a, b)
    segments = []
    covered = 0
    start = from_us(a)
    for s, e, (person, source, layer, oid) in raw:
        end = from_us(e)
        segments.append(Segment(start, end, person, source, layer, oid))
        if person is not None:
            covered += e - s
        start = end
    return FinalSchedule(from_us(a), from_us(b), tuple(segments), covered / (b - a))
