"""Shifts of one rotation: who holds the turn, from when to when.

Shift ``k`` (``k`` may be negative: the rotation is projected backwards from
its handoff as well as forwards) belongs to ``participants[k % n]`` and
starts at the wall time ``handoff + k × length × unit`` (unit: one hour for
``hourly``, ``shift_seconds`` for ``custom``, one calendar day for ``daily``,
seven for ``weekly``), resolved in the zone (gap → first valid instant after
it, ambiguous → first occurrence). Every type steps on the wall clock, as an
iCalendar ``RRULE`` in a ``TZID`` does: a 09:00 daily handoff stays at 09:00
local, and a 12-hour rotation handing off at 08:00/20:00 keeps doing so after
a DST change, the shift that spans the change being an hour (30 minutes on
Lord Howe) longer or shorter in elapsed time.

The resolver asks for the shifts of one *piece* of time with a single UTC
offset (see :meth:`.zones.Zone.pieces`), where resolving a wall time is a
subtraction; boundaries outside the piece are clipped to it, which is where
the zone rules put them too. A shift whose whole wall-clock span lies in a
DST gap (a 1-hour shift from 02:00 on a spring-forward night in New York)
never appears; its turn is skipped, as the rotation order is counted in wall
steps from the handoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .layers import Rotation, RotationType
from .zones import DAY, HOUR, SECOND, WEEK, Zone, wall_us

_UNITS = {RotationType.HOURLY: HOUR, RotationType.DAILY: DAY, RotationType.WEEKLY: WEEK}


@dataclass(frozen=True, slots=True)
class CompiledRotation:
    """A rotation reduced to integers (wall-clock anchor and step).

    ``labels`` stand for the participants in order (the participant ids, or
    whatever the caller wants each shift tagged with).
    """

    labels: tuple[Any, ...]
    step: int  # wall-clock microseconds between handoffs
    anchor: int  # wall time of shift 0's handoff

    @classmethod
    def build(
        cls, rotation: Rotation, zone: Zone, labels: tuple[Any, ...] | None = None
    ) -> CompiledRotation:
        """Compile ``rotation`` (the zone is only needed per query, see :meth:`shifts`).

        ``labels`` (one per participant) tag the shifts; by default the
        participant ids.
        """
        del zone  # every rotation steps in wall time; the zone applies per piece
        people = rotation.participants if labels is None else labels
        unit = _UNITS.get(rotation.type) or int(rotation.shift_seconds or 0) * SECOND
        return cls(people, rotation.length * unit, wall_us(rotation.handoff))

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
        step, anchor = self.step, self.anchor
        wa = a + offset
        if wa < floor:  # in the repeated hour: handoffs there happened at the first one
            wa = floor - 1
        k = (wa - anchor) // step
        w = anchor + k * step
        s = w - offset if w >= floor else a  # below the floor: began before the piece
        out: list[tuple[int, int, Any]] = []
        e = anchor + (k + 1) * step - offset
        while s < b:
            out.append((s if s > a else a, e if e < b else b, participants[k % n]))
            k += 1
            s = e
            e += step
        return out
