"""When a layer is allowed to be on call: restriction windows as instants.

A restriction ``{"days": ["mon"], "start": "22:00", "end": "06:00"}`` is the
wall-time window Monday 22:00 → Tuesday 06:00: ``end <= start`` crosses
midnight, ``start == end`` lasts a whole 24 hours from ``start``. Several
restrictions are OR-ed; a layer without restrictions is always allowed.

Windows are first folded into one weekly *mask* (wall-time offsets from
Monday 00:00, merged), then laid on the calendar week by week within one
offset piece of the zone (see :meth:`.zones.Zone.pieces`), where a window's
ends become instants by subtraction; ends outside the piece are clipped to
it, which is where the zone rules (gap → first valid instant after it,
ambiguous → first occurrence) put them too.

On a spring-forward night a 22:00-06:00 window is an hour shorter in elapsed
time, on a fall-back night an hour longer: restrictions are about the clock
on the wall.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time
from math import gcd
from typing import Any

from .intervals import intersect
from .layers import DAYS, Restriction
from .rotation import CompiledRotation
from .zones import DAY, SECOND, WEEK, monday_of_wall

Mask = tuple[tuple[int, int], ...]


def _of_day(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * SECOND + t.microsecond


def weekly_mask(restrictions: Sequence[Restriction]) -> Mask | None:
    """Merged weekly windows ``(start, end)`` from Monday 00:00 wall time; None = always."""
    if not restrictions:
        return None
    windows: list[tuple[int, int]] = []
    for r in restrictions:
        start, end = _of_day(r.start), _of_day(r.end)
        length = end - start if end > start else end - start + DAY
        for day in r.days:
            s = DAYS.index(day) * DAY + start
            windows.append((s, s + length))
    windows.sort()
    merged: list[tuple[int, int]] = []
    for s, e in windows:
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    # Always allowed if the mask, wrapped around the week, covers all of it.
    spans: list[tuple[int, int]] = []
    for s, e in sorted([*merged, *((s - WEEK, e - WEEK) for s, e in merged)]):
        if spans and s <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], e))
        else:
            spans.append((s, e))
    if any(s <= 0 and e >= WEEK for s, e in spans):
        return None
    return tuple(merged)


def allowed(
    mask: Mask, ends: tuple[int, ...], a: int, b: int, offset: int, floor: int
) -> list[tuple[int, int]]:
    """Allowed instants within ``[a, b)``: sorted, disjoint ``(start, end)`` spans.

    ``[a, b)`` must lie within one piece of the zone (see
    :meth:`.zones.Zone.pieces`): a wall time ``w >= floor`` is the instant
    ``w - offset``, an earlier one lies before the piece. ``ends`` are the
    mask's window ends (see :func:`mask_ends`).
    """
    wa, wb = a + offset, b + offset
    out: list[tuple[int, int]] = []
    n = len(mask)
    # Start in the previous week (a window may reach 8 days past its week's
    # Monday), at its first window still open at wa (window ends are sorted).
    week = monday_of_wall(wa) - WEEK
    i = bisect_right(ends, wa - week)
    while True:
        if i >= n:
            i = 0
            week += WEEK
        ws, we = mask[i]
        i += 1
        if week + we <= wa:
            continue
        if week + ws >= wb:
            break
        s = week + ws - offset if week + ws >= floor else a
        e = week + we - offset if week + we >= floor else a
        if e <= a:
            continue
        if s < a:
            s = a
        if e > b:
            e = b
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def mask_ends(mask: Mask) -> tuple[int, ...]:
    """End offsets of a mask's windows (sorted, as the windows are disjoint)."""
    return tuple(e for _, e in mask)


MAX_PATTERN_PERIOD = 400 * DAY
MAX_PATTERN_ITEMS = 5000


@dataclass(frozen=True, slots=True)
class Pattern:
    """A rotation already intersected with its restrictions, over one period.

    Both repeat in wall time (the rotation every ``n × step``, the mask every
    week), so their intersection repeats every ``period`` (the least common
    multiple). It is computed once, with the very functions the resolver
    uses (:meth:`.rotation.CompiledRotation.shifts`, :func:`allowed`,
    :func:`.intervals.intersect`, in wall coordinates), and replayed per query.
    """

    origin: int  # wall time where the period starts
    period: int
    starts: tuple[int, ...]  # wall offsets from origin, sorted
    ends: tuple[int, ...]
    labels: tuple[Any, ...]

    @classmethod
    def build(cls, rotation: CompiledRotation, mask: Mask) -> Pattern | None:
        """The pattern of ``rotation`` under ``mask`` (None if not worth it)."""
        if not rotation.labels:
            return None
        cycle = rotation.step * len(rotation.labels)
        period = cycle * WEEK // gcd(cycle, WEEK)
        if period > MAX_PATTERN_PERIOD:
            return None
        origin = rotation.anchor
        never = origin - 2 * WEEK  # no wall floor: wall coordinates are their own instants
        items = rotation.shifts(origin, origin + period, 0, never)
        items = intersect(items, allowed(mask, mask_ends(mask), origin, origin + period, 0, never))
        if len(items) > MAX_PATTERN_ITEMS:
            return None
        return cls(
            origin,
            period,
            tuple(s - origin for s, _, _ in items),
            tuple(e - origin for _, e, _ in items),
            tuple(label for _, _, label in items),
        )

    def items(self, a: int, b: int, offset: int, floor: int) -> list[tuple[int, int, Any]]:
        """The pattern's pieces within ``[a, b)`` of one zone piece (see ``Zone.pieces``)."""
        wa, wb = a + offset, b + offset
        q, r = divmod(wa - self.origin, self.period)
        base = self.origin + q * self.period
        starts, ends, labels = self.starts, self.ends, self.labels
        n = len(starts)
        if not n:
            return []
        i = bisect_right(ends, r)
        out: list[tuple[int, int, Any]] = []
        while True:
            if i >= n:
                i = 0
                base += self.period
            ws = base + starts[i]
            if ws >= wb:
                return out
            we = base + ends[i]
            s = ws - offset if ws >= floor else a
            e = we - offset if we >= floor else a
            if e > a:
                out.append((s if s > a else a, e if e < b else b, labels[i]))
            i += 1
