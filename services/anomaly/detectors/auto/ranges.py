"""Ranges of ``auto``: the fading envelope of a row's history, and recent ranges.

A point is surprising in a channel when it breaks that channel's range; the
*excess* is how far outside it lies, in noise units.

``fading_ranges``
    the range of everything seen so far, each extreme fading back by one
    noise unit every ``forget`` points (the level and seasonal channels).
``RecentRanges``
    the range over the latest ``recent`` points (the mean and recent
    channels), kept as the maxima of ``RECENT_BLOCKS`` blocks of
    ``recent / 10`` points plus those of the open block; a minimum is kept as
    the maximum of the negated series.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .jsonable import list_from_json, list_to_json
from .params import RECENT_BLOCKS, RECENT_ROWS, RELATIVE_FLOOR
from .scratch import scratch


class Envelopes(NamedTuple):
    """Fading ranges of the rows of a batch (work arrays; see :func:`fading_ranges`)."""

    fade: np.ndarray  # cumulative fade before each point (rows, n + 1)
    top: np.ndarray  # running maxima of x + fade, then of fade - x (2 rows, n + 1)
    hi: np.ndarray  # upper end before each point (rows, n)
    lo: np.ndarray  # lower end before each point (rows, n)
    excess: np.ndarray  # how far each point lies outside (negative inside)

    def after(self, row: int, t: int) -> tuple[float, float]:
        """``(lo, hi)`` of ``row`` after its first ``t`` points."""
        rows = self.fade.shape[0]
        return (
            float(self.fade[row, t] - self.top[rows + row, t]),
            float(self.top[row, t] - self.fade[row, t]),
        )

    def ends(self, row: int, t: int) -> tuple[float, float]:
        """Magnitudes of the faded extremes of ``row`` after ``t`` points (bound its range)."""
        rows = self.fade.shape[0]
        return abs(self.top[row, t]), abs(self.top[rows + row, t])


def fading_ranges(
    x: np.ndarray, noise: np.ndarray, forget: float, start: list[tuple[float, float]]
) -> Envelopes:
    """Fading range of each row of ``x`` before each point, and the excess of each point.

    ``hi[t] = max(hi0, max_{j<t} x[j] + S[j]) - S[t-1]`` with ``S`` the
    cumulative fade (``noise / forget`` per point), and likewise ``lo``.
    ``start`` holds each row's ``(lo, hi)`` before the batch.
    """
    rows, n = x.shape
    fade = scratch("fade", (rows, n + 1))
    fade[:, 0] = 0.0
    np.divide(noise, forget, out=fade[:, 1:])
    np.cumsum(fade[:, 1:], axis=1, out=fade[:, 1:])
    top = scratch("top", (2 * rows, n + 1))
    for r, (lo0, hi0) in enumerate(start):
        top[r, 0] = hi0
        top[rows + r, 0] = -lo0
    np.add(x, fade[:, 1:], out=top[:rows, 1:])
    np.subtract(fade[:, 1:], x, out=top[rows:, 1:])
    np.maximum.accumulate(top, axis=1, out=top)
    hi = np.subtract(top[:rows, :n], fade[:, :n], out=scratch("hi", (rows, n)))
    lo = np.subtract(fade[:, :n], top[rows:, :n], out=scratch("lo", (rows, n)))
    excess = np.subtract(x, hi, out=scratch("excess", (rows, n)))
    below = np.subtract(lo, x, out=scratch("below", (rows, n)))
    np.maximum(excess, below, out=excess)  # positive outside the range
    return Envelopes(fade, top, hi, lo, excess)


def excess(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How far ``y`` lies outside ``[lo, hi]`` (0 inside, and 0 with no range yet)."""
    out = np.maximum(np.maximum(y - hi, lo - y), 0.0)
    out[~np.isfinite(out)] = 0.0
    return out


def unit(noise: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Noise unit usable as a denominator (a flat history still has a tiny one)."""
    size = np.maximum(np.abs(lo), np.abs(hi))
    size[~np.isfinite(size)] = 1.0
    return np.maximum(noise, RELATIVE_FLOOR * np.maximum(size, 1.0))


_WINDOW_BOUNDS: dict[tuple[int, int, int], np.ndarray] = {}


def window_max(h: np.ndarray, width: int) -> np.ndarray:
    """Maximum of each run of ``width`` consecutive columns of ``h`` (one ``reduceat``)."""
    rows, cols = h.shape
    count = cols - width + 1
    key = (rows, cols, width)
    bounds = _WINDOW_BOUNDS.get(key)
    if bounds is None:
        # [start, stop) of each window of each row of h padded by one column
        starts = (np.arange(rows)[:, None] * (cols + 1) + np.arange(count)[None, :]).reshape(-1)
        bounds = np.empty(2 * starts.shape[0], dtype=np.intp)
        bounds[0::2] = starts
        bounds[1::2] = starts + width
        bounds.setflags(write=False)
        _WINDOW_BOUNDS[key] = bounds
    padded = np.empty((rows, cols + 1))
    padded[:, :cols] = h
    padded[:, cols] = -np.inf
    return np.maximum.reduceat(padded.reshape(-1), bounds)[0::2].reshape(rows, count)


class RecentRanges:
    """Maximum of each row over the latest ``recent`` points, kept as block maxima.

    Rows (``RECENT_ROWS``): the mean, -mean, the value, -value. The state is
    the maxima of the latest ``RECENT_BLOCKS`` completed blocks of
    ``recent // RECENT_BLOCKS`` points (oldest first, -inf: none yet) and
    those of the open block.
    """

    def __init__(self, recent: int) -> None:
        self.size = max(1, recent // RECENT_BLOCKS)
        self.blocks = np.full((RECENT_ROWS, RECENT_BLOCKS), -math.inf)
        self.block = np.full(RECENT_ROWS, -math.inf)

    def top(self) -> np.ndarray:
        """Each row's maximum over the kept points (what the next point is compared with)."""
        return np.maximum(self.blocks.max(axis=1), self.block)

    def before_each(self, rows: np.ndarray, count: int) -> tuple[np.ndarray, float]:
        """Each row's maximum before each point of a batch, and a bound on every magnitude.

        ``count`` points came before the batch. One running maximum per block
        (a leading column holds what came before the block's first point),
        then the maximum of the previous blocks. Learns the batch.
        """
        size = self.size
        k, n = rows.shape
        offset = count % size
        nb = -(-(offset + n) // size)
        grid = scratch("grid", (k, nb, size + 1))
        grid[:, :, 0] = -np.inf
        if offset == 0 and n == nb * size:
            grid[:, :, 1:] = rows.reshape(k, nb, size)
        else:
            flat = scratch("flat", (k, nb * size))
            flat[:, :offset] = -np.inf
            flat[:, offset + n :] = -np.inf
            flat[:, offset : offset + n] = rows
            grid[:, :, 1:] = flat.reshape(k, nb, size)
            if offset:
                grid[:, 0, 0] = self.block
        np.maximum.accumulate(grid, axis=2, out=grid)
        ends = grid[:, :, size]  # maxima of the blocks (the first with the open block's)
        # the RECENT_BLOCKS completed blocks before each block
        history = np.concatenate((self.blocks, ends), axis=1)
        prior = window_max(history[:, :-1], RECENT_BLOCKS)
        out = scratch("ranges", (k, nb, size))
        np.maximum(grid[:, :, :size], prior[:, :, None], out=out)
        out = out.reshape(k, nb * size)
        bound = float(history.max())
        if (offset + n) % size:
            self.blocks = history[:, nb - 1 : nb - 1 + RECENT_BLOCKS].copy()
            self.block = ends[:, -1].copy()
        else:
            self.blocks = history[:, nb:].copy()
            self.block = np.full(k, -np.inf)
        return out[:, offset : offset + n], bound

    # -- state -------------------------------------------------------------------
    def to_json(self, count: int) -> dict[str, Any]:
        """``blocks`` (the completed ones only) and ``block`` after ``count`` points."""
        kept = min(RECENT_BLOCKS, count // self.size)
        return {
            "blocks": self.blocks[:, RECENT_BLOCKS - kept :].tolist(),
            "block": list_to_json(self.block),
        }

    def load(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`to_json` gave."""
        blocks = np.array(state["blocks"], dtype=np.float64).reshape(RECENT_ROWS, -1)
        self.blocks = np.full((RECENT_ROWS, RECENT_BLOCKS), -math.inf)
        self.blocks[:, RECENT_BLOCKS - blocks.shape[1] :] = blocks
        self.block = list_from_json(state["block"], -math.inf)
