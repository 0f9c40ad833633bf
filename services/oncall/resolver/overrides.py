"""Overrides as claims on the timeline, latest created first.

An override puts its person on call from ``start`` to ``end`` above every
layer. Where overrides overlap, the most recently created one wins (ordered
by ``created_at``, then ``sequence``, then ``id``); an older override still
owns the parts of its span the newer one does not cover. The result never has
two people at one instant.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from .schedule import Override
from .zones import to_us

_OLDEST = -(2**62)


@dataclass(frozen=True, slots=True)
class CompiledOverrides:
    """Overrides as integers, sorted by start for range lookups."""

    starts: list[int]
    items: list[tuple[int, int, tuple[int, int, str], tuple[str, str, None, str]]]
    """``(start, end, rank, key)`` sorted by start; ``key`` is the segment key."""
    longest: int

    @classmethod
    def build(cls, overrides: Sequence[Override]) -> CompiledOverrides:
        """Compile ``overrides`` (any order)."""
        items = sorted(
            (
                to_us(o.start),
                to_us(o.end),
                (_OLDEST if o.created_at is None else to_us(o.created_at), o.sequence, o.id),
                (o.person_id, "override", None, o.id),
            )
            for o in overrides
        )
        return cls([i[0] for i in items], items, max((i[1] - i[0] for i in items), default=0))

    def claims(self, a: int, b: int) -> list[tuple[int, int, tuple[str, str, None, str]]]:
        """Overrides overlapping ``[a, b)``, clipped, newest first.

        Each is ``(start, end, (person_id, "override", None, override_id))``:
        the label is the final schedule's segment key.
        """
        lo = bisect_left(self.starts, a - self.longest)
        hi = bisect_left(self.starts, b)
        if lo == hi:
            return []
        found = [i for i in self.items[lo:hi] if i[1] > a]
        if len(found) > 1:
            found.sort(key=lambda i: i[2], reverse=True)
        return [(s if s > a else a, e if e < b else b, key) for s, e, _, key in found]
