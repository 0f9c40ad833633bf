"""Compiled helpers of ``auto``: the local window (a ring and its sorted copy) and small sorts.

The local window keeps the latest ``W`` values twice: in arrival order (a
ring) and sorted. A new value replaces the oldest in the sorted copy by one
binary search and a shift of the values between the two, so medians and
quartiles cost nothing per point.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import _cache  # noqa: F401 (stamps the compiled functions with the package hash)


@njit(cache=True, nogil=True)
def quantile_sorted(a: np.ndarray, n: int, q: float) -> float:
    """The ``q`` quantile of the sorted ``a[:n]`` (linear interpolation)."""
    if n == 0:
        return math.nan
    pos = q * (n - 1)
    i = int(pos)
    if i + 1 < n:
        f = pos - i
        return a[i] * (1.0 - f) + a[i + 1] * f
    return a[n - 1]


@njit(cache=True, nogil=True)
def push(ring: np.ndarray, srt: np.ndarray, fill: int, pos: int, width: int, x: float) -> int:
    """Add ``x`` to the window, dropping the oldest once it holds ``width`` values.

    ``fill`` values are held; while not full they sit at ``ring[:fill]``, then
    ``pos`` is the oldest. Returns the new ``pos`` (the caller counts ``fill``).
    """
    if fill < width:
        j = fill
        while j > 0 and srt[j - 1] > x:
            srt[j] = srt[j - 1]
            j -= 1
        srt[j] = x
        ring[fill] = x
        return pos
    old = ring[pos]
    lo, hi = 0, fill - 1
    while lo < hi:  # the leftmost copy of the oldest value
        mid = (lo + hi) // 2
        if srt[mid] < old:
            lo = mid + 1
        else:
            hi = mid
    j = lo
    if x >= old:
        while j + 1 < fill and srt[j + 1] < x:
            srt[j] = srt[j + 1]
            j += 1
    else:
        while j > 0 and srt[j - 1] > x:
            srt[j] = srt[j - 1]
            j -= 1
    srt[j] = x
    ring[pos] = x
    return (pos + 1) % width
