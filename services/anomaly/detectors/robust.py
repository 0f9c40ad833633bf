"""Robust statistics of rows of points: quantiles, medians, robust standard deviations."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

# median absolute deviation and mean absolute deviation of a standard normal
MAD_TO_SIGMA = 1.0 / NormalDist().inv_cdf(0.75)
MEAN_ABS_DEV_TO_SIGMA = math.sqrt(math.pi / 2.0)
# quantiles of |deviation| tried when the MAD is 0, with their normal scaling
_WIDER_DEVIATION_QUANTILES = tuple(
    (q, 1.0 / NormalDist().inv_cdf(0.5 + q / 2.0)) for q in (0.75, 0.9)
)


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
