"""Compiled seasonal tables of ``auto``: the change from the same time one season ago.

A table keeps, per time slot of its season, the latest value and the slot's
index (so a slot counts only if it was written exactly one season ago). The
*change* ``x - value one season ago`` has its own noise unit (EW mean absolute
change of the changes) and fading range, kept in six scalars of the state
named by a block of indices (``DAY`` and ``WEEK`` below). ``auto`` has a daily
and a weekly table: a change is news only where it is unlike both yesterday
and last week (a Monday after a weekend is unlike Sunday, not last Monday).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import _cache  # noqa: F401 (stamps the compiled functions with the package hash)
from .layout import S
from .params import RELATIVE_FLOOR

#: A season needs at least this many points to get a table.
MIN_SEASON_POINTS = 4.0

# indices of a table's scalars: slots, slot width, changes learned, latest change,
# their noise unit, changes averaged into it, their fading range (low, high)
DAY = tuple(
    S[k]
    for k in (
        "slots", "slot_width", "resid_count", "resid_last", "resid_noise", "resid_noise_n",
        "resid_lo", "resid_hi",
    )
)  # fmt: skip
WEEK = tuple(
    S[k]
    for k in (
        "week_slots", "week_slot_width", "week_count", "week_last", "week_noise",
        "week_noise_n", "week_lo", "week_hi",
    )
)  # fmt: skip
_T0 = S["season_t0"]


@njit(cache=True, nogil=True, inline="always")
def set_season(s: np.ndarray, b: tuple, season: float, step: float, most: int) -> None:
    """Size a table for ``season`` seconds at the cadence ``step``, in at most ``most``
    slots (none if the season is too short)."""
    if season > 0.0 and season / step >= MIN_SEASON_POINTS:
        slots = min(round(season / step), most)
        s[b[0]] = slots
        s[b[1]] = season / slots


@njit(cache=True, nogil=True, inline="always")
def change(
    s: np.ndarray, b: tuple, values: np.ndarray, index: np.ndarray, t: float, x: float
) -> tuple[float, float, int]:
    """The change from one season ago (NaN if that slot was not seen then), the slot's
    running index and the slot."""
    slots = int(s[b[0]])
    if slots == 0:
        return math.nan, -1.0, -1
    k = math.floor((t - s[_T0]) / s[b[1]] + 0.5)
    slot = int(k % slots)
    if index[slot] == k - slots:
        return x - values[slot], k, slot
    return math.nan, k, slot


@njit(cache=True, nogil=True, inline="always")
def known(s: np.ndarray, b: tuple, resid: float, least: float) -> bool:
    """A change with at least ``least`` changes learned before it."""
    return not math.isnan(resid) and s[b[2]] >= least


@njit(cache=True, nogil=True, inline="always")
def spread(s: np.ndarray, b: tuple, resid: float, width: float) -> float:
    """How far the change is from the middle of the range of changes, in ``width``
    half-widths of that range (NaN for a range of no width)."""
    half = 0.5 * (s[b[7]] - s[b[6]])
    if half <= 0.0:
        return math.nan
    return abs(resid - 0.5 * (s[b[7]] + s[b[6]])) / (width * half)


@njit(cache=True, nogil=True, inline="always")
def faded(s: np.ndarray, b: tuple, dt: float, forget_s: float) -> tuple[float, float]:
    """The range of changes, faded by one noise unit per ``forget_s`` since the last point."""
    fade = s[b[4]] * dt / forget_s
    return s[b[6]] + fade, s[b[7]] - fade


@njit(cache=True, nogil=True, inline="always")
def excess(s: np.ndarray, b: tuple, resid: float, dt: float, forget_s: float) -> float:
    """How far the change is outside its faded range, in its noise units."""
    lo, hi = faded(s, b, dt, forget_s)
    unit = max(s[b[4]], RELATIVE_FLOOR * max(abs(lo), abs(hi), 1.0))
    return max(resid - hi, lo - resid, 0.0) / unit


@njit(cache=True, nogil=True, inline="always")
def learn(
    s: np.ndarray,
    b: tuple,
    values: np.ndarray,
    index: np.ndarray,
    resid: float,
    k: float,
    slot: int,
    x: float,
    dt: float,
    memory: float,
    forget_s: float,
) -> None:
    """Learn the change (noise, range) and write the value into its slot."""
    if slot < 0:
        return
    if not math.isnan(resid):
        if s[b[2]] > 0.0:
            n_changes = s[b[5]] + 1.0
            s[b[4]] += max(1.0 / memory, 1.0 / n_changes) * (abs(resid - s[b[3]]) - s[b[4]])
            s[b[5]] = n_changes
            lo, hi = faded(s, b, dt, forget_s)
            s[b[6]] = min(lo, resid)
            s[b[7]] = max(hi, resid)
        else:
            s[b[6]] = resid
            s[b[7]] = resid
        s[b[3]] = resid
        s[b[2]] += 1.0
    values[slot] = x
    index[slot] = k
