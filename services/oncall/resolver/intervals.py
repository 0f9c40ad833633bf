"""Half-open interval helpers on sorted, disjoint lists of integer instants.

The resolver's whole job is "who claims which part of the timeline": the
highest-priority claimer takes what it covers of the still-free time, the
next one takes what it covers of what is left, and so on. :func:`claim` is
that step; it is linear in the sizes of both lists.
"""

from __future__ import annotations

from typing import TypeVar

L = TypeVar("L")

Span = tuple[int, int]


def claim(
    free: list[Span], items: list[tuple[int, int, L]]
) -> tuple[list[tuple[int, int, L]], list[Span]]:
    """Split ``items`` against ``free`` time.

    Both lists are sorted by start and disjoint. Returns ``(taken, left)``:
    the parts of ``items`` inside ``free`` (with their labels) and the parts
    of ``free`` no item covers. Empty pieces are never produced.
    """
    if len(free) == 1 and items and free[0][0] <= items[0][0] and items[-1][1] <= free[0][1]:
        # Everything is free (the usual first claim): take all, keep the holes.
        cur, end = free[0]
        left: list[Span] = []
        for s, e, _ in items:
            if s > cur:
                left.append((cur, s))
            cur = e
        if cur < end:
            left.append((cur, end))
        return items, left
    taken: list[tuple[int, int, L]] = []
    left = []
    n = len(items)
    j = 0
    for fs, fe in free:
        cur = fs
        while j < n and items[j][1] <= fs:
            j += 1
        k = j
        while k < n:
            s, e, label = items[k]
            if s >= fe:
                break
            if s < fs:
                s = fs
            if e > fe:
                e = fe
            if s < e:
                if s > cur:
                    left.append((cur, s))
                taken.append((s, e, label))
                if e > cur:
                    cur = e
            k += 1
        if cur < fe:
            left.append((cur, fe))
    return taken, left


def intersect(items: list[tuple[int, int, L]], spans: list[Span]) -> list[tuple[int, int, L]]:
    """The parts of labelled ``items`` inside ``spans`` (both sorted and disjoint)."""
    out: list[tuple[int, int, L]] = []
    n = len(spans)
    j = 0
    for s, e, label in items:
        while j < n and spans[j][1] <= s:
            j += 1
        k = j
        while k < n:
            ws, we = spans[k]
            if ws >= e:
                break
            out.append((s if s > ws else ws, e if e < we else we, label))
            k += 1
    return out


def clip(spans: list[Span], lo: int, hi: int) -> list[Span]:
    """The parts of ``spans`` inside ``[lo, hi)``."""
    out: list[Span] = []
    for s, e in spans:
        if e <= lo:
            continue
        if s >= hi:
            break
        out.append((max(s, lo), min(e, hi)))
    return out
