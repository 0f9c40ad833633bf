"""The score scale every detector shares, and filling results on it.

Every detector reduces its evidence to a tail probability ``p`` under the
normal behaviour it has learned and reports ``score = 1 - p``. Detectors whose
evidence is a z-like statistic use the two-sided normal tail, so a score of
0.99 means "as surprising as a 2.58-sigma deviation" for every algorithm.
``Z_BAND`` is that deviation: ``lower``/``upper`` bands are drawn where the
score reaches ``BAND_SCORE``, the default alert threshold.

**The tail ranks.** In float64 ``1 - p`` is exactly 1.0 once ``p`` falls below
about 1.1e-16 (a normal z beyond 8.2), so every larger event would tie at 1.0
and no threshold could tell a 9-sigma blip from a 10,000-sigma outage. Beyond
the knee ``p = KNEE_P`` (1e-4, a score of 0.9999, z 3.89) the reported ``p``
therefore decays slowly in the *surprise* ``s = -ln p`` (in nats) instead of
exponentially::

    p = KNEE_P / (1 + ln(s / s_knee)) ** TAIL_POWER      (s > s_knee = 9.21)

It is continuous at the knee and strictly decreasing in ``s``, and stays
above 3.5e-14 for any evidence (the surprise of the largest float64 z), so the
score is strictly increasing in the evidence and never exactly 1.0. Below the
knee nothing changes: 0.99 and 0.999 (the default ``critical``) keep their
meaning, and so do the bands. For a normal z: 0.9999 at 3.89, 1 - 4.9e-6 at
10, 1 - 2.6e-7 at 100, 1 - 2.2e-8 at 10^4, 1 - 5.9e-9 at 10^6. Every score
map goes through :func:`score_from_surprise` (z-like statistics through
:func:`two_sided_score` and :func:`upper_score`, which compute the surprise
without the underflow of ``p``).
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

# the knee of the score map: below it score = 1 - p exactly, beyond it the tail ranks
KNEE_P = 1e-4
KNEE_SURPRISE = -math.log(KNEE_P)  # 9.21 nats; a two-sided normal z of 3.89
# how fast the reported p keeps falling beyond the knee (per e-fold of the surprise ratio)
TAIL_POWER = 3.0
_LOG_KNEE_SURPRISE = math.log(KNEE_SURPRISE)
# log of the largest surprise scored: that of the largest float64 z (z^2 / 2 would
# overflow, its log does not); infinite evidence scores like it, p = 3.5e-14
_LOG_MAX_SURPRISE = 2.0 * math.log(np.finfo(np.float64).max * _SQRT_HALF)

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
def _erfc_parts(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``t`` and the polynomial of ``erfc(z) = t exp(poly - z^2)`` for z >= 0."""
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(t, _ERFC_COEFFS[0])
    for coeff in _ERFC_COEFFS[1:]:
        poly = poly * t + coeff
    return t, poly


def erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function, vectorised (relative error < 1.1e-7).

    Chebyshev fit of Press et al., *Numerical Recipes* (2nd ed., 6.2); numpy
    has no erfc of its own and ``math.erfc`` element by element is six times
    slower. Monotone decreasing, which keeps scores monotone in surprise.
    """
    z = np.abs(x)
    t, poly = _erfc_parts(z)
    tail = t * np.exp(poly - z * z)
    return np.where(x >= 0.0, tail, 2.0 - tail)


def _tail_p(log_surprise: np.ndarray) -> np.ndarray:
    """The reported ``p`` beyond the knee, from ``ln s`` (``s > KNEE_SURPRISE``)."""
    log_ratio = np.minimum(log_surprise, _LOG_MAX_SURPRISE) - _LOG_KNEE_SURPRISE
    return KNEE_P / (1.0 + log_ratio) ** TAIL_POWER


# 0-d arrays rather than Python floats as ufunc operands: the same float64 results,
# without converting the scalar on every call (a third of the cost for a few points)
_ZERO, _ONE, _KNEE_SURPRISE = np.array(0.0), np.array(1.0), np.array(KNEE_SURPRISE)


def _score_of_p(p: np.ndarray) -> np.ndarray:
    """``1 - p`` floored at 0 for ``p >= 0`` (so never above 1); NaN scores 0
    (``fmax`` drops a NaN for the 0)."""
    return np.fmax(_ONE - p, _ZERO)


def score_from_surprise(surprise: np.ndarray) -> np.ndarray:
    """Score of the evidence ``s = -ln p`` (nats): ``1 - p``, the tail ranked.

    The shared score map. Up to ``KNEE_SURPRISE`` it is ``1 - exp(-s)``;
    beyond, ``1 - KNEE_P / (1 + ln(s / KNEE_SURPRISE)) ** TAIL_POWER``, which
    is strictly increasing in ``s`` and below 1 for every ``s`` (infinity
    included). ``s <= 0`` scores 0, NaN scores 0. Detectors whose ``p`` would
    underflow (long runs, large sums) pass the surprise itself.
    """
    s = np.asarray(surprise, dtype=np.float64)
    p = np.exp(-np.maximum(s, _ZERO))  # NaN stays NaN
    tail = s > _KNEE_SURPRISE
    if np.count_nonzero(tail):  # rather than .any(): no Python-level wrapper
        p = np.where(tail, 0.0, p)
        p[tail] = _tail_p(np.log(s[tail]))
    return _score_of_p(p)


def score_from_p(p: np.ndarray) -> np.ndarray:
    """Score of a tail probability ``p``: ``1 - p`` up to the knee, ranked beyond.

    NaN p scores 0; ``p >= 1`` scores 0. A ``p`` that has underflowed to 0
    scores like infinite evidence (just below 1); pass the surprise to
    :func:`score_from_surprise` where it can underflow.
    """
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        surprise = -np.log(np.where(p > 0.0, p, 0.0))
    return np.where(np.isnan(p) | (p >= 1.0), 0.0, score_from_surprise(surprise))


def two_sided_score(z: np.ndarray) -> np.ndarray:
    """``1 - P(|Z| >= |z|)`` for a standard normal Z, the tail ranked; NaN z scores 0.

    Up to the knee this is the plain normal tail; beyond it the surprise
    ``-ln P = x^2 - poly(t) - ln t`` (``x = |z| / sqrt 2``) is taken from the
    same erfc fit without forming ``P``, which underflows, and its log without
    forming ``x^2``, which overflows beyond |z| of about 1e154.
    """
    z = np.asarray(z, dtype=np.float64)
    x = np.abs(z) * _SQRT_HALF
    t, poly = _erfc_parts(x)
    with np.errstate(over="ignore", invalid="ignore"):
        p = t * np.exp(poly - x * x)
    tail = p < KNEE_P  # NaN compares False
    if np.count_nonzero(tail):
        xt, polyt = x[tail], poly[tail]
        with np.errstate(over="ignore"):
            surprise = xt * xt - polyt + np.log1p(0.5 * xt)
        finite = np.isfinite(surprise)
        with np.errstate(divide="ignore"):
            log_surprise = np.where(
                finite, np.log(np.where(finite, surprise, 1.0)), 2.0 * np.log(xt)
            )
        p = np.where(tail, 0.0, p)
        p[tail] = np.minimum(_tail_p(log_surprise), KNEE_P)
    return _score_of_p(p)


def upper_score(z: np.ndarray) -> np.ndarray:
    """Score of a statistic watched in one direction only (large z is surprising).

    Uses the same z-to-score mapping as :func:`two_sided_score` for z > 0 and
    scores 0 otherwise, so a score means the same deviation for every detector
    and a point in the unwatched direction is not surprising at all.
    """
    z = np.asarray(z, dtype=np.float64)
    return two_sided_score(np.where(z > 0.0, z, 0.0))


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
