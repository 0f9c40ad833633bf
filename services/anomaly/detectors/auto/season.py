"""The seasonal channel of ``auto``: the change from the same time one season ago.

Seasonal slots
--------------
The cadence (median of the first ``CADENCE_INTERVALS`` intervals) sets the
number of time slots per season, one per expected point and at most
``MAX_SLOTS`` (finer cadences share a slot). Slots are counted from the first
seasonal point, each centred on a multiple of the slot width, so a regular
series lands one slot further at each point even with some jitter. The table
holds, per slot, the last value seen in that slot during the latest season
(older ones are dropped), so a point's reference is the value of its slot
exactly one season (slot count) before, or none.

The channel counts only as much as the season explains the series: its weight
(:func:`seasonal_gate`) falls to zero when the range of the seasonal changes is
not clearly narrower than the range of the values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .jsonable import from_json, to_json
from .params import RELATIVE_FLOOR
from .ranges import Envelopes, unit
from .scratch import NO_POINTS, NO_VALUES, scratch

#: Intervals between the first points whose median sets the cadence (and the slot count).
CADENCE_INTERVALS = 16
#: Most time slots per season (beyond, several points share a slot): bounds the state.
MAX_SLOTS = 1440
#: The seasonal weight is full when the range of seasonal changes is at most this
#: share of the range of the values, and falls linearly to 0 when they are equal.
SEASONAL_FULL_RATIO = 0.5


def seasonal_gate(resid_width: np.ndarray, value_width: np.ndarray) -> np.ndarray:
    """Weight of the seasonal channel from how much narrower its range is."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = resid_width / value_width
    gate = (1.0 - ratio) / (1.0 - SEASONAL_FULL_RATIO)
    gate = np.clip(gate, 0.0, 1.0)
    gate[~np.isfinite(gate)] = 0.0
    return gate


def seasonal_excess(
    env: Envelopes,
    noise: np.ndarray,
    k: int,
    points: np.ndarray | None,
    ready: int,
    cold: int,
    prior: tuple[float, float] | None,
    value_range: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Batch positions where the seasonal change breaks its range, and its gated excess.

    Row 1 of ``env`` and ``noise`` holds the ``k`` seasonal changes (at batch
    positions ``points``, None: every point); the first ``ready`` are still
    warming up and batch points before ``cold`` are not scored. ``prior`` is
    the range before the batch (None: no change learned yet), ``value_range``
    the value's ``(lo, hi)`` before each point, for the gate. The excess is
    in noise units and not yet weighted by ``seasonal_weight``.
    """
    cand = np.flatnonzero(env.excess[1, ready:k] > 0.0)
    if not cand.size:
        return NO_POINTS, NO_VALUES
    cand += ready
    at = cand if points is None else points[cand]
    if at[0] < cold:
        keep = at >= cold
        cand, at = cand[keep], at[keep]
    lo1, hi1 = env.lo[1, cand], env.hi[1, cand]
    unit1 = noise[1, cand]
    size1 = max(*env.ends(1, k), 1.0)
    if prior is not None:
        size1 = max(size1, abs(prior[0]), abs(prior[1]))
    if cand.size and float(unit1.min()) < RELATIVE_FLOOR * size1:
        unit1 = unit(unit1, lo1, hi1)
    # seasonal_gate (a NaN gate, from two empty ranges, ends up as 0 in the ensemble)
    lo0, hi0 = value_range
    gate = hi1 - lo1
    gate /= hi0[at] - lo0[at]
    np.subtract(1.0, gate, out=gate)
    np.clip(gate / (1.0 - SEASONAL_FULL_RATIO), 0.0, 1.0, out=gate)
    season_x = env.excess[1, cand] / unit1
    season_x *= gate
    return at, season_x


def slot_index(g: np.ndarray, slots: int) -> np.ndarray:
    """Slot of each (integral) slot number: ``g mod slots``."""
    return (g - slots * np.floor(g / slots)).astype(np.intp)


def _put_wrapped(table: np.ndarray, start: int, values: np.ndarray) -> None:
    """Write ``values`` into a circular table from ``start`` (at most its length)."""
    size = table.shape[0]
    first = min(values.shape[0], size - start)
    table[start : start + first] = values[:first]
    table[: values.shape[0] - first] = values[first:]


def _fill_wrapped(table: np.ndarray, start: float, count: float, value: float) -> None:
    """Set ``count`` entries of a circular table from ``start`` (NaN start: nothing)."""
    if not count >= 1.0:  # also NaN
        return
    size = table.shape[0]
    if count >= size:
        table[:] = value
        return
    begin, stop = int(start), int(start) + int(count)
    table[begin : min(stop, size)] = value
    if stop > size:
        table[: stop - size] = value


def _table_to_json(table: np.ndarray) -> tuple[list[float], list[int]]:
    """Slot values as plain floats (0 where empty) and the [start, stop) runs of empty slots."""
    empty = np.isnan(table)
    if not empty.any():
        return table.tolist(), []
    edges = np.flatnonzero(np.diff(empty, prepend=False, append=False))
    return np.where(empty, 0.0, table).tolist(), edges.tolist()


def _table_from_json(values: list[float], empty: list[int]) -> np.ndarray:
    table = np.array(values, dtype=np.float64).reshape(-1)
    for start, stop in zip(empty[0::2], empty[1::2], strict=True):
        table[start:stop] = math.nan
    return table


class SlotTable:
    """The cadence, then each slot's latest value of the latest season.

    State: the first time stamps (until the cadence is known), the slot
    values (NaN: empty; no slots: no season at this cadence), the anchor (time
    stamp of slot 0, the first seasonal point) and the slot number of the
    latest point.
    """

    def __init__(self, season_seconds: float) -> None:
        self.season_seconds = season_seconds
        self.first_times = np.empty(0)
        self.values = np.empty(0)
        self.anchor = math.nan
        self.last_slot = math.nan

    def changes(
        self, ts: np.ndarray, vs: np.ndarray, out: np.ndarray, count: int
    ) -> tuple[int, np.ndarray | None]:
        """Change of each point from its reference one season back, for those that have one.

        Writes the changes into ``out`` and returns ``(count, points)``:
        ``points`` are their positions in the batch (None: every point).
        ``count`` points came before the batch. Learns the cadence first, then
        updates the table.
        """
        n = ts.shape[0]
        start = self._learn_cadence(ts) if count <= CADENCE_INTERVALS else 0
        if not self.values.shape[0] or start >= n:
            return 0, None
        if not start:
            return self._references(ts, vs, out)
        found, points = self._references(ts[start:], vs[start:], out)
        if found:
            points = np.arange(start, n) if points is None else points + start
        return found, points

    def _learn_cadence(self, ts: np.ndarray) -> int:
        """Learn the cadence from the first points; index of the first seasonal point.

        The median of the first ``CADENCE_INTERVALS`` intervals sets the
        number of time slots per season (one per expected point, at most
        ``MAX_SLOTS``). The points used for it are not entered in the table.
        """
        missing = CADENCE_INTERVALS + 1 - self.first_times.shape[0]
        self.first_times = np.concatenate((self.first_times, ts[:missing]))
        if self.first_times.shape[0] <= CADENCE_INTERVALS:
            return ts.shape[0]
        gaps = sorted(np.diff(self.first_times).tolist())
        half = len(gaps) // 2
        cadence = gaps[half] if len(gaps) % 2 else 0.5 * (gaps[half - 1] + gaps[half])
        self.first_times = np.empty(0)
        slots = min(MAX_SLOTS, int(round(self.season_seconds / cadence)))
        if slots >= 4:
            self.values = np.full(slots, math.nan)
        return missing

    def slot_numbers(self, ts: np.ndarray) -> np.ndarray:
        """Slot number of each time stamp, counted from the anchor (float, integral)."""
        width = self.season_seconds / self.values.shape[0]
        g = np.subtract(ts, self.anchor, out=scratch("slot", ts.shape))
        np.divide(g, width, out=g)
        return np.rint(g, out=g)

    def references(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each time stamp's reference value in the table, and whether it is one season back."""
        slots = self.values.shape[0]
        slot_number = self.slot_numbers(ts)
        lag = slot_number - self.last_slot
        reference = self.values[slot_index(slot_number, slots)]
        return reference, (lag >= 1.0) & (lag <= slots)

    def _references(
        self, ts: np.ndarray, vs: np.ndarray, out: np.ndarray
    ) -> tuple[int, np.ndarray | None]:
        """Changes from one season back (see :meth:`changes`); updates the table.

        A point's reference is the last value of its slot one season (``slots``
        slot numbers) before it: from an earlier point of the batch, or from
        the table, which holds each slot's last value of the latest season.
        Only the first point of a slot in a season has one.
        """
        table = self.values
        slots = table.shape[0]
        if math.isnan(self.anchor):
            self.anchor = float(ts[0])
        g = self.slot_numbers(ts)
        n = g.shape[0]
        g0, g_end, last = float(g[0]), float(g[-1]), self.last_slot
        points: np.ndarray | None = None
        if g_end - g0 == n - 1 and (n == 1 or bool(np.not_equal(g[1:], g[:-1]).all())):
            # one slot further at each point: the table for the first `slots`, the batch after
            m = min(n, slots)
            s0 = int(g0 % slots)
            head = out[:m]
            if s0 + m <= slots:
                np.subtract(vs[:m], table[s0 : s0 + m], out=head)
            else:
                np.subtract(vs[:m], np.concatenate((table[s0:], table[: s0 + m - slots])), out=head)
            np.subtract(vs[m:], vs[: n - m], out=out[m:n])
            lag = g0 - last  # slots since the table's latest point (NaN: none yet)
            count = n
            if not (1.0 <= lag and lag + m - 1 <= slots and math.isfinite(float(head.sum()))):
                lags = lag + np.arange(m)
                ok = (lags >= 1.0) & (lags <= slots) & ~np.isnan(head)
                points = np.concatenate((np.flatnonzero(ok), np.arange(m, n)))
                count = points.shape[0]
                out[:count] = out[points]
            if lag != 1.0:  # (right after the table's latest point, the batch overwrites them)
                _fill_wrapped(table, (last + 1.0) % slots, g_end - last, math.nan)
            _put_wrapped(table, int((g_end - m + 1.0) % slots), vs[n - m :])
        else:
            # several points in a slot, or slots skipped: each point's slot one season back
            first = np.empty(n, dtype=bool)  # first point of its slot in the batch
            first[0] = True
            np.not_equal(g[1:], g[:-1], out=first[1:])
            ends = np.empty(n, dtype=bool)  # last point of its slot in the batch
            ends[-1] = True
            ends[:-1] = first[1:]
            ends = np.flatnonzero(ends)
            rel = g - g0  # slot numbers from the batch's first
            back = rel - slots
            in_batch = back >= 0.0
            span = int(g_end - g0)
            if span <= 8 * n + 2 * slots:
                where = np.full(span + 1, -1, dtype=np.intp)  # last point of each slot number
                where[rel[ends].astype(np.intp)] = ends
                j = where[np.maximum(back, 0.0).astype(np.intp)]
                found = in_batch & (j >= 0)
            else:
                j = np.searchsorted(g, g - slots, side="right") - 1
                found = in_batch & (g[j] == g - slots)
            slot = slot_index(g, slots)
            lag = g - last
            from_table = (lag >= 1.0) & (lag <= slots) & ~in_batch
            diff = vs - np.where(in_batch, vs[j], table[slot])
            ok = first & (found | from_table) & ~np.isnan(diff)
            points = np.flatnonzero(ok)
            count = points.shape[0]
            out[:count] = diff[points]
            _fill_wrapped(table, (last + 1.0) % slots, g_end - last, math.nan)
            keep = ends[g[ends] > g_end - slots]
            table[slot[keep]] = vs[keep]
        self.last_slot = g_end
        if count == n:
            points = None
        return count, points

    # -- state -------------------------------------------------------------------
    def to_json(self) -> list[Any]:
        """Slot values (0 where empty), [start, stop) runs of empty slots, anchor, latest slot."""
        return [
            *_table_to_json(self.values),
            to_json(self.anchor),
            None if math.isnan(self.last_slot) else int(self.last_slot),
        ]

    def load(self, first_times: list[float], slots: list[Any]) -> None:
        """Restore the first time stamps and what :meth:`to_json` gave."""
        self.first_times = np.array(first_times, dtype=np.float64).reshape(-1)
        values, empty, anchor, last = slots
        self.values = _table_from_json(values, empty)
        self.anchor = from_json(anchor, math.nan)
        self.last_slot = math.nan if last is None else float(last)
