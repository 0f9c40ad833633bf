"""Numerical helpers shared by the detectors (private to the package).

Score scale
-----------
Every detector reduces its evidence to a tail probability ``p`` under the
normal behaviour it has learned and reports ``score = 1 - p``. Detectors whose
evidence is a z-like statistic use the two-sided normal tail, so a score of
0.99 means "as surprising as a 2.58-sigma deviation" for every algorithm.
``Z_BAND`` is that deviation: ``lower``/``upper`` bands are drawn where the
score reaches ``BAND_SCORE``, the default alert threshold.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from statistics import NormalDist
from typing import Any

import numpy as np

from .base import Detector, Scores

BAND_SCORE = 0.99
# deviation (in standard deviations) at which a two-sided score reaches BAND_SCORE
Z_BAND = NormalDist().inv_cdf(0.5 + BAND_SCORE / 2.0)
# median absolute deviation and mean absolute deviation of a standard normal
MAD_TO_SIGMA = 1.0 / NormalDist().inv_cdf(0.75)
MEAN_ABS_DEV_TO_SIGMA = math.sqrt(math.pi / 2.0)
# quantiles of |deviation| tried when the MAD is 0, with their normal scaling
_WIDER_DEVIATION_QUANTILES = tuple(
    (q, 1.0 / NormalDist().inv_cdf(0.5 + q / 2.0)) for q in (0.75, 0.9)
)
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


# -- recursions ----------------------------------------------------------------
# longest accumulated decay (in e-folds) handled by one closed-form block; keeps
# the block's scaling factors within e^30, far from overflow and from rounding
_BLOCK_LOG_SPAN = 30.0


def linear_recursion(beta: np.ndarray | float, u: np.ndarray, y0: float) -> np.ndarray:
    """Vectorised ``y[t] = beta[t] * y[t-1] + u[t]`` with ``y[-1] = y0``.

    ``beta`` in [0, 1]; ``beta == 0`` restarts the recursion (``y = u``). Within
    a block, ``y[t] = P[t] * (y_start + cumsum(u / P)[t])`` with ``P`` the
    running product of ``beta``; blocks end before ``P`` falls below e^-30 so the
    result matches the step-by-step loop to ~1e-13 relative.
    """
    u = np.asarray(u, dtype=np.float64)
    n = u.shape[0]
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    beta_arr = np.broadcast_to(np.asarray(beta, dtype=np.float64), u.shape)
    restart = beta_arr <= 0.0
    log_beta = np.log(np.where(restart, 1.0, beta_arr))
    cum = np.cumsum(log_beta)
    neg_cum = -cum  # non-decreasing, searchable
    restarts = np.flatnonzero(restart)
    next_restart = 0
    y_prev = float(y0)
    start = 0
    while start < n:
        while next_restart < restarts.size and restarts[next_restart] < start:
            next_restart += 1
        if next_restart < restarts.size and restarts[next_restart] == start:
            y_prev = 0.0
            next_restart += 1
        base = float(cum[start - 1]) if start > 0 else 0.0
        end = int(np.searchsorted(neg_cum, _BLOCK_LOG_SPAN - base, side="right"))
        if next_restart < restarts.size:
            end = min(end, int(restarts[next_restart]))
        end = min(max(end, start + 1), n)
        growth = np.exp(cum[start:end] - base)
        block = growth * (y_prev + np.cumsum(u[start:end] / growth))
        out[start:end] = block
        y_prev = float(block[-1])
        start = end
    return out


def adaptive_alphas(alpha: float, count0: int, n: int) -> np.ndarray:
    """Smoothing factor of the 1st..nth new point: ``max(alpha, 1 / count)``.

    Early on this is an equal-weight running mean (no start-up bias); once
    ``1 / count`` falls below ``alpha`` it becomes a plain EWMA.
    """
    counts = np.arange(count0 + 1, count0 + n + 1, dtype=np.float64)
    return np.maximum(alpha, 1.0 / counts)


def ewm_mean_var(
    x: np.ndarray, alphas: np.ndarray, mean0: float, var0: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exponentially weighted mean and variance, vectorised.

    West's update per point: ``d = x - m``, ``m += a d``,
    ``v = (1 - a)(v + a d^2)``; with ``a = 1 / count`` it is Welford's running
    mean and (population) variance. Returns the mean and variance *before* each
    point (what that point is scored against) and after it.
    """
    betas = 1.0 - alphas
    mean_after = linear_recursion(betas, alphas * x, mean0)
    mean_before = np.concatenate(([mean0], mean_after[:-1]))
    dev = x - mean_before
    var_after = linear_recursion(betas, betas * alphas * dev * dev, var0)
    var_before = np.concatenate(([var0], var_after[:-1]))
    return mean_before, var_before, mean_after, var_after


# -- windows ---------------------------------------------------------------------
def windows_ending_at(
    history: np.ndarray, values: np.ndarray, length: int, *, learn: bool
) -> tuple[np.ndarray, int]:
    """Windows of ``length`` points ending at (and including) each batch point.

    ``history`` holds the latest points already learned (oldest first). When
    learning, the batch extends the history, so point ``i`` sees the batch
    points before it; otherwise every point is placed alone right after the
    history. Returns ``(windows, first)``: ``windows[j]`` belongs to batch
    point ``first + j`` (earlier points have too little history).
    """
    n = values.shape[0]
    if learn:
        seq = np.concatenate((history, values))
        first = max(0, length - 1 - history.shape[0])
        if n == 0 or first >= n:
            return np.empty((0, length)), n
        view = np.lib.stride_tricks.sliding_window_view(seq, length)
        offset = history.shape[0] - length + 1
        return view[offset + first : offset + n], first
    if history.shape[0] < length - 1 or n == 0:
        return np.empty((0, length)), n
    windows = np.empty((n, length), dtype=np.float64)
    if length > 1:
        windows[:, :-1] = history[history.shape[0] - (length - 1) :]
    windows[:, -1] = values
    return windows, 0


def sorted_quantile(sorted_rows: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` of each row of a row-sorted matrix (linear interpolation).

    Sorting once and indexing is several times faster than ``np.quantile`` or
    ``np.median`` along an axis, which partition row by row.
    """
    position = q * (sorted_rows.shape[1] - 1)
    below = int(math.floor(position))
    fraction = position - below
    low = sorted_rows[:, below]
    if fraction == 0.0:
        return low.copy()
    return low + fraction * (sorted_rows[:, below + 1] - low)


def row_median(rows: np.ndarray) -> np.ndarray:
    """Median of each row, by one partition (rows need not be sorted)."""
    width = rows.shape[1]
    half = width // 2
    parted = np.partition(rows, half, axis=1)
    upper = parted[:, half]
    if width % 2:
        return upper
    return 0.5 * (parted[:, :half].max(axis=1) + upper)


def robust_sigma(rows: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Normal-equivalent standard deviation of each row: ``1.4826 * MAD``.

    Where the MAD is 0 (more than half the row is one value, as with sparse
    counts) the 75 % and then the 90 % quantile of the absolute deviations are
    used, each scaled to a normal standard deviation, and finally the row's
    standard deviation: the usual small departures from such a floor must not
    look extreme.
    """
    deviations = np.abs(rows - center[:, None])
    sigma = row_median(deviations) * MAD_TO_SIGMA
    degenerate = sigma <= 0.0
    if not np.any(degenerate):
        return sigma
    # rare: sort only the degenerate rows
    ordered = np.sort(deviations[degenerate], axis=1)
    fallback = np.zeros(ordered.shape[0])
    for quantile, to_sigma in _WIDER_DEVIATION_QUANTILES:
        missing = fallback <= 0.0
        fallback[missing] = sorted_quantile(ordered[missing], quantile) * to_sigma
    missing = fallback <= 0.0
    fallback[missing] = rows[degenerate][missing].std(axis=1)
    sigma[degenerate] = fallback
    return sigma


def updated_tail(history: np.ndarray, values: np.ndarray, keep: int) -> np.ndarray:
    """The last ``keep`` points of history followed by the batch."""
    if keep <= 0:
        return np.empty(0)
    return np.concatenate((history, values))[-keep:]


# -- state and results ------------------------------------------------------------
def empty_scores(n: int, *, detail: bool = False) -> Scores:
    """Scores of ``n`` points with no opinion: score 0, bands NaN."""
    return Scores(
        score=np.zeros(n),
        expected=np.full(n, np.nan),
        lower=np.full(n, np.nan),
        upper=np.full(n, np.nan),
        detail=np.full(n, np.nan) if detail else None,
    )


def float_list(values: Any) -> list[float]:
    """A JSON list of floats (exact round trip through ``json``)."""
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1).tolist()]


def optional_float(value: float | None) -> float | None:
    """JSON-safe float: NaN becomes None (Postgres jsonb refuses NaN)."""
    if value is None or math.isnan(value):
        return None
    return float(value)


def float_or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def fmt(value: float) -> str:
    """Compact number for explanations."""
    if math.isnan(value):
        return "n/a"
    return f"{value:.4g}"


def learning_sentence(label: str, warmup: int) -> str:
    return f"{label}: still learning (scores start after {warmup} points)."


class WindowDetector(Detector):
    """Shared state of detectors that look at the latest points: a count and a tail.

    Subclasses define ``history_length`` (points kept) and call
    :meth:`_learn_tail` after scoring a learning batch.
    """

    _count: int
    _tail: np.ndarray

    @property
    @abstractmethod
    def history_length(self) -> int:
        """Latest points kept in the state."""

    def reset(self) -> None:
        self._count = 0
        self._tail = np.empty(0)

    def get_state(self) -> dict[str, Any]:
        return {"count": self._count, "tail": float_list(self._tail)}

    def set_state(self, state: dict[str, Any]) -> None:
        self._count = int(state["count"])
        self._tail = np.asarray(state["tail"], dtype=np.float64).reshape(-1)

    @property
    def n_seen(self) -> int:
        return self._count

    def _seen_before(self, n: int, learn: bool) -> np.ndarray:
        """Points learned before each batch point was scored."""
        if learn:
            return np.arange(self._count, self._count + n)
        return np.full(n, self._count)

    def _learn_tail(self, values: np.ndarray) -> None:
        self._count += int(values.shape[0])
        self._tail = updated_tail(self._tail, values, self.history_length)
