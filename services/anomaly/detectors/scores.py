"""The score scale every detector shares, and filling results on it.

Every detector reduces its evidence to a tail probability ``p`` under the
normal behaviour it has learned and reports ``score = 1 - p``. Detectors whose
evidence is a z-like statistic use the two-sided normal tail, so a score of
0.99 means "as surprising as a 2.58-sigma deviation" for every algorithm.
``Z_BAND`` is that deviation: ``lower``/``upper`` bands are drawn where the
score reaches ``BAND_SCORE``, the default alert threshold.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from .base import Scores

BAND_SCORE = 0.99
# deviation (in standard deviations) at which a two-sided score reaches BAND_SCORE
Z_BAND = NormalDist().inv_cdf(0.5 + BAND_SCORE / 2.0)
# smallest scale used as a denominator, relative to the magnitude of the level
RELATIVE_SCALE_FLOOR = 1e-9

_SQRT_HALF = math.sqrt(0.5)
# Horner coefficients, highest power first (Numerical Recipes' erfcc)
_ERFC_COEFFS = (
    0.17087277,
    -0.82215223,
    1.48851587,
    -1.13520398,
    0.27886807,
    -0.18628806,
    0.09678418,
    0.37409196,
    1.00002368,
    -1.26551223,
)


# -- tail probabilities -------------------------------------------------------
def erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function, vectorised (relative error < 1.1e-7).

    Chebyshev fit of Press et al., *Numerical Recipes* (2nd ed., 6.2); numpy
    has no erfc of its own and ``math.erfc`` element by element is six times
    slower. Monotone decreasing, which keeps scores monotone in surprise.
    """
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(t, _ERFC_COEFFS[0])
    for coeff in _ERFC_COEFFS[1:]:
        poly = poly * t + coeff
    tail = t * np.exp(poly - z * z)
    return np.where(x >= 0.0, tail, 2.0 - tail)


def two_sided_score(z: np.ndarray) -> np.ndarray:
    """``1 - P(|Z| >= |z|)`` for a standard normal Z; NaN z scores 0."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        score = 1.0 - erfc(np.abs(z) * _SQRT_HALF)
    score = np.where(np.isnan(score), 0.0, score)
    return np.clip(score, 0.0, 1.0)


def upper_score(z: np.ndarray) -> np.ndarray:
    """Score of a statistic watched in one direction only (large z is surprising).

    Uses the same z-to-score mapping as :func:`two_sided_score` for z > 0 and
    scores 0 otherwise, so a score means the same deviation for every detector
    and a point in the unwatched direction is not surprising at all.
    """
    z = np.asarray(z, dtype=np.float64)
    return two_sided_score(np.where(z > 0.0, z, 0.0))


def score_from_p(p: np.ndarray) -> np.ndarray:
    """``1 - p`` clipped to [0, 1] (NaN p scores 0)."""
    p = np.asarray(p, dtype=np.float64)
    score = np.where(np.isnan(p), 0.0, 1.0 - p)
    return np.clip(score, 0.0, 1.0)


def safe_scale(scale: np.ndarray, level: np.ndarray, min_scale: float) -> np.ndarray:
    """A scale usable as a denominator: at least ``min_scale`` and never zero.

    A constant history has scale 0; the relative floor keeps the z of an
    unchanged value at 0 and makes any real change very surprising, which is
    what a flat history means.
    """
    floor = np.maximum(min_scale, RELATIVE_SCALE_FLOOR * np.maximum(np.abs(level), 1.0))
    return np.maximum(scale, floor)


# -- results ---------------------------------------------------------------------
def empty_scores(n: int, *, detail: bool = False) -> Scores:
    """Scores of ``n`` points with no opinion: score 0, bands NaN."""
    return Scores(
        score=np.zeros(n),
        expected=np.full(n, np.nan),
        lower=np.full(n, np.nan),
        upper=np.full(n, np.nan),
        detail=np.full(n, np.nan) if detail else None,
    )


def fill_band(
    result: Scores,
    rows: np.ndarray | slice,
    score: np.ndarray,
    center: np.ndarray,
    down: np.ndarray,
    up: np.ndarray | None = None,
    detail: np.ndarray | None = None,
) -> None:
    """Write ``rows`` of ``result``: the score, ``center`` and the band around it.

    The band is ``center - Z_BAND * down`` to ``center + Z_BAND * up`` (``up``
    defaults to ``down``); ``detail`` is written when given (``result`` must
    have one).
    """
    result.score[rows] = score
    result.expected[rows] = center
    result.lower[rows] = center - Z_BAND * down
    result.upper[rows] = center + Z_BAND * (down if up is None else up)
    if detail is not None:
        result.detail[rows] = detail  # type: ignore[index]


def fill_z(
    result: Scores,
    rows: np.ndarray | slice,
    z: np.ndarray,
    center: np.ndarray,
    down: np.ndarray,
    up: np.ndarray | None = None,
    detail: np.ndarray | None = None,
) -> None:
    """:func:`fill_band` for a z-like statistic: two-sided score, ``detail`` z unless given."""
    fill_band(result, rows, two_sided_score(z), center, down, up, z if detail is None else detail)
