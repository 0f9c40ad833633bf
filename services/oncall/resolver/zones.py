"""Exact, fast conversion between wall time and instants in one IANA zone.

Every instant inside the resolver is an ``int`` of microseconds since the Unix
epoch (UTC); a *wall time* is the same kind of integer for a naive local
datetime (as if the wall clock were UTC). Working in integers lets the
resolver use ``bisect`` and plain arithmetic instead of creating datetimes.

:class:`Zone` learns the zone's UTC-offset transitions from :mod:`zoneinfo`
(by probing every 12 hours and bisecting to the second) for the years it is
asked about, then answers with a binary search:

* :meth:`Zone.offset_at` / :meth:`Zone.to_wall`: instant → offset / wall time.
* :meth:`Zone.resolve`: wall time → instant, with the schedule rules: a wall
  time inside a DST gap resolves to the first valid instant after the gap
  (the transition itself), an ambiguous wall time to its first occurrence
  (``fold=0``).
* :meth:`Zone.pieces`: a range split at transitions, each piece with its one
  offset, so callers can turn many wall times into instants by subtraction
  (exactly the same answers as :meth:`Zone.resolve`, after clipping).

The learned transitions are cached per zone for the life of the process; the
table only grows (a year at a time) and is swapped atomically, so a
:class:`Zone` is safe to share between threads.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

US = 1_000_000
SECOND = US
MINUTE = 60 * US
HOUR = 3600 * US
DAY = 86_400 * US
WEEK = 7 * DAY

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)

# The zone tables cover at most this span (datetime's own range is wider, but
# tzdata means nothing outside it and the probe must stay far from year 1/9999).
_TABLE_MIN = -5_364_662_400 * US  # 1800-01-01T00:00Z
_TABLE_MAX = 32_503_680_000 * US  # 3000-01-01T00:00Z
_CHUNK = 366 * DAY  # the table grows by whole chunks
_MARGIN = 3 * DAY  # a wall time is within 26 h of its instant; keep more than that
_PROBE_STEP_S = 12 * 3600  # transitions closer together than this are assumed absent


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (moment - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    """The aware UTC datetime of microseconds since the epoch."""
    return _EPOCH + timedelta(0, 0, us)


def wall_us(naive: datetime) -> int:
    """A naive wall datetime as microseconds (the wall clock read as if UTC)."""
    return (naive - _EPOCH_NAIVE) // _ONE_US


def wall_datetime(wall: int) -> datetime:
    """The naive datetime of a wall time in microseconds."""
    return _EPOCH_NAIVE + timedelta(microseconds=wall)


def weekday_of_wall(wall: int) -> int:
    """Monday = 0 ... Sunday = 6 of a wall time (1970-01-01 was a Thursday)."""
    return (wall // DAY + 3) % 7


def monday_of_wall(wall: int) -> int:
    """Wall time of 00:00 on the Monday of the week containing ``wall``."""
    days = wall // DAY
    return (days - (days + 3) % 7) * DAY


class _Table:
    """Immutable snapshot: transitions in ``(lo, hi]`` and the offsets between them.

    ``offs[i]`` is the offset in force before ``trans[i]`` (``offs[0]`` from
    ``lo``) and ``offs[i + 1]`` after it. ``keys[i] = trans[i] + offs[i]`` is
    the wall time at which the old offset stops being read.
    """

    __slots__ = ("lo", "hi", "trans", "offs", "keys", "safe_lo", "safe_hi")

    def __init__(self, lo: int, hi: int, trans: list[int], offs: list[int]) -> None:
        self.lo = lo
        self.hi = hi
        self.trans = trans
        self.offs = offs
        self.keys = [t + offs[i] for i, t in enumerate(trans)]
        self.safe_lo = lo + _MARGIN
        self.safe_hi = hi - _MARGIN


def _offset_s(tz: ZoneInfo, seconds: int) -> int:
    offset = (_EPOCH + timedelta(seconds=seconds)).astimezone(tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _probe(tz: ZoneInfo, lo_s: int, hi_s: int) -> tuple[list[int], list[int]]:
    """Transitions (to the second) of ``tz`` in ``(lo_s, hi_s]`` and the offsets around them."""
    offset = _offset_s(tz, lo_s)
    trans: list[int] = []
    offs: list[int] = [offset * US]
    t = lo_s
    while t < hi_s:
        n = min(t + _PROBE_STEP_S, hi_s)
        if _offset_s(tz, n) == offset:
            t = n
            continue
        a, b = t, n  # offset(a) == offset, offset(b) != offset
        while b - a > 1:
            m = (a + b) // 2
            if _offset_s(tz, m) == offset:
                a = m
            else:
                b = m
        offset = _offset_s(tz, b)
        trans.append(b * US)
        offs.append(offset * US)
        t = b  # keep probing from the transition: another may follow within the step
    return trans, offs


class Zone:
    """One IANA zone with a lazily grown transition table (see the module doc)."""

    __slots__ = ("key", "tz", "_table", "_lock")

    def __init__(self, key: str) -> None:
        self.key = key
        self.tz = ZoneInfo(key)
        self._lock = threading.Lock()
        self._table: _Table | None = None

    # -- table maintenance -------------------------------------------------
    def _covering(self, t: int) -> _Table:
        table = self._table
        if table is not None and table.lo + _MARGIN <= t <= table.hi - _MARGIN:
            return table
        return self._extend(t)

    def _extend(self, t: int) -> _Table:
        if not _TABLE_MIN + _MARGIN <= t <= _TABLE_MAX - _MARGIN:
            raise ValueError(f"instant {t} us is outside the supported range (1800-3000)")
        with self._lock:
            table = self._table
            if table is not None and table.lo + _MARGIN <= t <= table.hi - _MARGIN:
                return table
            want_lo = max(_TABLE_MIN, ((t - _MARGIN) // _CHUNK) * _CHUNK)
            want_hi = min(_TABLE_MAX, ((t + _MARGIN) // _CHUNK + 1) * _CHUNK)
            if table is None:
                trans, offs = _probe(self.tz, want_lo // US, want_hi // US)
                new = _Table(want_lo, want_hi, trans, offs)
            else:
                lo, hi = min(table.lo, want_lo), max(table.hi, want_hi)
                trans, offs = list(table.trans), list(table.offs)
                if lo < table.lo:
                    left_t, left_o = _probe(self.tz, lo // US, table.lo // US)
                    trans = left_t + trans
                    offs = left_o + offs[1:]
                if hi > table.hi:
                    right_t, right_o = _probe(self.tz, table.hi // US, hi // US)
                    trans = trans + right_t
                    offs = offs + right_o[1:]
                new = _Table(lo, hi, trans, offs)
            self._table = new
            return new

    # -- queries -----------------------------------------------------------
    def table(self, lo: int, hi: int) -> _Table:
        """A table snapshot covering instants and wall times in ``[lo, hi]``."""
        table = self._table
        if table is not None and table.safe_lo <= lo and hi <= table.safe_hi:
            return table
        self._covering(lo)
        return self._covering(hi)

    def offset_at(self, t: int) -> int:
        """UTC offset (microseconds) in force at instant ``t``."""
        table = self._table
        if table is None or not table.safe_lo <= t <= table.safe_hi:
            table = self._extend(t)
        return table.offs[bisect_right(table.trans, t)]

    def to_wall(self, t: int) -> int:
        """Wall time of instant ``t``."""
        table = self._table
        if table is None or not table.safe_lo <= t <= table.safe_hi:
            table = self._extend(t)
        return t + table.offs[bisect_right(table.trans, t)]

    def resolve(self, wall: int) -> int:
        """Instant of a wall time: gap → first valid instant after it; ambiguous → first."""
        table = self._table
        if table is None or not table.safe_lo <= wall <= table.safe_hi:
            table = self._extend(wall)
        i = bisect_right(table.keys, wall)
        offset = table.offs[i]
        if i:
            transition = table.trans[i - 1]
            if wall < transition + offset:  # inside the gap opened by this transition
                return transition
        return wall - offset

    def pieces(self, a: int, b: int) -> list[tuple[int, int, int, int]]:
        """``[a, b)`` split at the zone's transitions: ``(lo, hi, offset, floor)`` pieces.

        Within a piece, a wall time ``w >= floor`` resolves to ``w - offset``
        and a wall time ``w < floor`` resolves before ``lo``. ``floor`` only
        matters just after a fall-back: the repeated hour's wall times belong
        to their first occurrence, in the piece before. A wall time in a
        spring-forward gap resolves to the transition, i.e. the edge of a
        piece, which is where ``w - offset`` clipped to the piece lands too.
        So clipping to the piece gives exactly :meth:`resolve`'s answers.
        """
        table = self._table
        if table is None or not (table.safe_lo <= a and b <= table.safe_hi):
            table = self.table(a, b)
        trans, offs, keys = table.trans, table.offs, table.keys
        i = bisect_right(trans, a)
        if (i == len(trans) or trans[i] >= b) and (not i or keys[i - 1] <= a + offs[i]):
            return [(a, b, offs[i], a + offs[i])]  # the usual case: one offset, no repeated hour
        out = []
        lo = a
        while True:
            offset = offs[i]
            floor = lo + offset
            if i and keys[i - 1] > floor:  # inside the repeated hour after a fall-back
                floor = keys[i - 1]
            if i < len(trans) and trans[i] < b:
                out.append((lo, trans[i], offset, floor))
                lo = trans[i]
                i += 1
            else:
                out.append((lo, b, offset, floor))
                return out


_ZONES: dict[str, Zone] = {}
_ZONES_LOCK = threading.Lock()


def get_zone(key: str) -> Zone:
    """The shared :class:`Zone` for an IANA key (raises like ``ZoneInfo`` for bad keys)."""
    zone = _ZONES.get(key)
    if zone is None:
        with _ZONES_LOCK:
            zone = _ZONES.get(key)
            if zone is None:
                zone = Zone(key)
                _ZONES[key] = zone
    return zone
