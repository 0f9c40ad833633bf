"""Shifts of one rotation: who holds the turn, from when to when.

Shift ``k`` (``k`` may be negative: the rotation is projected backwards from
its handoff as well as forwards) belongs to ``participants[k % n]`` and
starts at:

* ``hourly`` / ``custom``: ``handoff_instant + k × length × unit`` (elapsed
  time: an 8-hour shift lasts 8 hours even across a DST change);
* ``daily`` / ``weekly``: the wall time ``handoff + k × length`` calendar days
  (× 7 for weekly), resolved in the zone (gap → first valid instant after it,
  ambiguous → first occurrence), so a 09:00 handoff stays at 09:00 local.

The resolver asks for the shifts of one *piece* of time with a single UTC
offset (see :meth:`.zones.Zone.pieces`), where resolving a wall time is a
subtraction; boundaries outside the piece are clipped to it, which is where
the zone rules put them too. A shift swallowed whole by a DST gap (only
possible for a gap longer than the shift) never appears.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .layers import Rotation, RotationType
from .zones import DAY, HOUR, SECOND, Zone, wall_us


@dataclass(frozen=True, slots=True)
class CompiledRotation:
    """A rotation reduced to integers for one zone.

    ``labels`` stand for the participants in order (the participant ids, or
    whatever the caller wants each shift tagged with).
    """

    labels: tuple[Any, ...]
    absolute: bool  # True: step in elapsed time from ``anchor``; False: in wall time
    step: int  # microseconds (elapsed or wall)
    anchor: int  # instant (absolute) or wall time (day-based) of shift 0

    @classmethod
    def build(
        cls, rotation: Rotation, zone: Zone, labels: tuple[Any, ...] | None = None
    ) -> CompiledRotation:
        """Compile ``rotation`` for ``zone`` (an absolute rotation's anchor is resolved here).

        ``labels`` (one per participant) tag the shifts; by default the
        participant ids.
        """
        handoff = wall_us(rotation.handoff)
        people = rotation.participants if labels is None else labels
        if rotation.type is RotationType.HOURLY:
            return cls(people, True, rotation.length * HOUR, zone.resolve(handoff))
        if rotation.type is RotationType.CUSTOM:
            step = rotation.length * int(rotation.shift_seconds or 0) * SECOND
            return cls(people, True, step, zone.resolve(handoff))
        days = rotation.length * (7 if rotation.type is RotationType.WEEKLY else 1)
        return cls(people, False, days * DAY, handoff)

    def shifts(self, a: int, b: int, offset: int, floor: int) -> list[tuple[int, int, Any]]:
        """Shifts overlapping ``[a, b)``, clipped, as ``(start, end, label)``.

        ``[a, b)`` must lie within one piece of the zone (see
        :meth:`.zones.Zone.pieces`): a wall time ``w >= floor`` is the instant
        ``w - offset``, an earlier one lies before the piece.
        """
        participants = self.labels
        n = len(participants)
        if not n or a >= b:
            return []
        step = self.step
        if self.absolute:
            k = (a - self.anchor) // step
            s = self.anchor + k * step
        else:
            wa = a + offset
            if wa < floor:  # in the repeated hour: handoffs there happened at the first one
                wa = floor - 1
            k = (wa - self.anchor) // step
            w = self.anchor + k * step
            s = w - offset if w >= floor else a
        out: list[tuple[int, int, Any]] = []
        while s < b:
            e = s + step if self.absolute else self.anchor + (k + 1) * step - offset
            out.append((s if s > a else a, e if e < b else b, participants[k % n]))
            k += 1
            s = e
        return out
