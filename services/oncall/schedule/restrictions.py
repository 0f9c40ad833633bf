"""When a layer is allowed to be on call: restriction windows as instants.

A restriction ``{"days": ["mon"], "start": "22:00", "end": "06:00"}`` is the
wall-time window Monday 22:00 → Tuesday 06:00: ``end <= start`` crosses
midnight, ``start == end`` lasts a whole 24 hours from ``start``. Several
restrictions are OR-ed; a layer without restrictions is always allowed.

Windows are first folded into one weekly *mask* (wall-time offsets from
Monday 00:00, merged), then laid on the calendar week by week, each end
resolved with the zone rules (gap → first valid instant after it, ambiguous →
first occurrence). On a spring-forward night a 22:00-06:00 window is an hour
shorter in elapsed time, on a fall-back night an hour longer: restrictions
are about the clock on the wall.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time

from .model import DAYS, Restriction
from .zones import DAY, SECOND, WEEK, Zone, monday_of_wall

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


def allowed(mask: Mask, zone: Zone, a: int, b: int) -> list[tuple[int, int]]:
    """Allowed instants within ``[a, b)``: sorted, disjoint ``(start, end)`` spans."""
    if a >= b:
        return []
    resolve = zone.resolve
    wa = zone.to_wall(a) - 2 * DAY  # walls this far from a/b cannot touch [a, b)
    wb = zone.to_wall(b) + 2 * DAY
    out: list[tuple[int, int]] = []
    week = monday_of_wall(wa) - WEEK  # a window may reach 8 days past its week's Monday
    while week <= wb:
        for ws, we in mask:
            if week + we <= wa:
                continue
            if week + ws >= wb:
                break
            s = resolve(week + ws)
            e = resolve(week + we)
            if e <= a or s >= b or e <= s:
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
        week += WEEK
    return out
