"""Shifts of one rotation: who holds the turn, from when to when.

Shift ``k`` (``k`` may be negative: the rotation is projected backwards from
its handoff as well as forwards) belongs to ``participants[k % n]`` and
starts at:

* ``hourly`` / ``custom``: ``handoff_instant + k × length × unit`` (elapsed
  time: an 8-hour shift lasts 8 hours even across a DST change);
* ``daily`` / ``weekly``: the wall time ``handoff + k × length`` calendar days
  (× 7 for weekly), resolved in the zone (gap → first valid instant after it,
  ambiguous → first occurrence), so a 09:00 handoff stays at 09:00 local.

A shift that resolves to zero length (possible only when a DST gap swallows a
whole shift) is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Rotation, RotationType
from .zones import DAY, HOUR, SECOND, Zone, wall_us


@dataclass(frozen=True, slots=True)
class CompiledRotation:
    """A rotation reduced to integers for one zone."""

    participants: tuple[str, ...]
    absolute: bool  # True: step in elapsed time from ``anchor``; False: in wall time
    step: int  # microseconds (elapsed or wall)
    anchor: int  # instant (absolute) or wall time (day-based) of shift 0
    zone: Zone

    @classmethod
    def build(cls, rotation: Rotation, zone: Zone) -> CompiledRotation:
        """Compile ``rotation`` for ``zone``."""
        handoff = wall_us(rotation.handoff)
        people = rotation.participants
        if rotation.type is RotationType.HOURLY:
            return cls(people, True, rotation.length * HOUR, zone.resolve(handoff), zone)
        if rotation.type is RotationType.CUSTOM:
            step = rotation.length * int(rotation.shift_seconds or 0) * SECOND
            return cls(people, True, step, zone.resolve(handoff), zone)
        days = rotation.length * (7 if rotation.type is RotationType.WEEKLY else 1)
        return cls(people, False, days * DAY, handoff, zone)

    def start(self, k: int) -> int:
        """Instant at which shift ``k`` starts."""
        if self.absolute:
            return self.anchor + k * self.step
        return self.zone.resolve(self.anchor + k * self.step)

    def index_at(self, t: int) -> int:
        """The shift ``k`` with ``start(k) <= t < start(k + 1)``."""
        if self.absolute:
            return (t - self.anchor) // self.step
        k = (self.zone.to_wall(t) - self.anchor) // self.step
        while self.start(k) > t:
            k -= 1
        while self.start(k + 1) <= t:
            k += 1
        return k

    def shifts(self, a: int, b: int) -> list[tuple[int, int, str]]:
        """Shifts overlapping ``[a, b)``, clipped to it, as ``(start, end, person)``."""
        participants = self.participants
        n = len(participants)
        if not n or a >= b:
            return []
        out: list[tuple[int, int, str]] = []
        k = self.index_at(a)
        s = self.start(k)
        while s < b:
            e = self.start(k + 1)
            if e > s:
                out.append((s if s > a else a, e if e < b else b, participants[k % n]))
            k += 1
            s = e
        return out
