"""The ensemble of ``auto``: the largest weighted channel excess becomes the score.

Score: ``1 - 0.01 ** (excess / EXCESS_AT_ALERT)``, so the default alert
threshold 0.99 is reached when a channel breaks its range by half a noise
unit. Band (``lower``/``upper``): the level channel's range widened by that
half unit; ``detail``: the code of the channel that gave the excess (0: none).
"""

from __future__ import annotations

import math

import numpy as np

from ..base import Scores
from .params import EXCESS_AT_ALERT, LEVEL, MEAN, RECENT, SCORE_RATE, SEASONAL

_CODES = np.array([LEVEL, MEAN, SEASONAL, RECENT], dtype=np.float64)
_CODES_NO_SEASON = np.array([LEVEL, MEAN, RECENT], dtype=np.float64)


def score_of(excess: np.ndarray) -> np.ndarray:
    """Score of an excess in noise units: ``1 - exp(-SCORE_RATE * excess)``."""
    return -np.expm1(-SCORE_RATE * excess)


def combine(
    each: np.ndarray, hot: np.ndarray, season_at: np.ndarray, season_x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Largest excess of the hot points and the code of the channel giving it.

    ``each``: the weighted excesses of the level, mean and recent channels at
    the batch positions ``hot``; ``season_x`` the weighted seasonal excess at
    the positions ``season_at`` (a subset of ``hot``). Ties go to the level,
    then the mean, then the seasonal channel; non-finite excesses count 0.
    """
    if season_at.size:
        # level, mean, seasonal, recent: the order ties are resolved in
        four = np.zeros((4, hot.shape[0]))
        four[:2] = each[:2]
        four[3] = each[2]
        four[2, np.searchsorted(hot, season_at)] = season_x
        each = four
        codes = _CODES
    else:
        codes = _CODES_NO_SEASON
    raw = each.max(axis=0)
    if not math.isfinite(float(raw.sum())):
        each[~np.isfinite(each)] = 0.0
        raw = each.max(axis=0)
    np.maximum(raw, 0.0, out=raw)
    return raw, codes[np.argmax(each >= raw, axis=0)]


def strongest(
    level: np.ndarray, mean: np.ndarray, seasonal: np.ndarray, recent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Largest weighted channel excess and the code of the channel giving it (every point).

    Ties go to the level, then the mean, then the seasonal channel.
    """
    raw = np.maximum(np.maximum(level, mean), np.maximum(seasonal, recent))
    code = np.full(raw.shape[0], float(RECENT))
    for c, x in ((SEASONAL, seasonal), (MEAN, mean), (LEVEL, level)):
        code[x >= raw] = c
    return raw, code


def peek_scores(
    excess: np.ndarray,
    chan: np.ndarray,
    expected: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    unit: np.ndarray,
    warm: np.ndarray,
) -> Scores:
    """Scores of points scored alone (no opinion where not ``warm``)."""
    score = score_of(excess)
    margin = EXCESS_AT_ALERT * unit
    if not warm.all():
        cold = ~warm
        score = np.where(cold, 0.0, score)
        expected = np.where(cold, np.nan, expected)
        lo = np.where(cold, np.nan, lo)
        hi = np.where(cold, np.nan, hi)
    return Scores(
        score=score,
        expected=expected,
        lower=lo - margin,
        upper=hi + margin,
        detail=np.where(excess > 0.0, chan, 0.0),
    )
