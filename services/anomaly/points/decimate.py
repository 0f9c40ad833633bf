"""PURE: which points of a series to keep so that a chart of at most `max_points`
looks like the chart of all of them.

Every anomaly is kept. The remaining budget is spent on equal-count buckets of the
other points, each keeping its lowest and highest value (the extremes a line chart
must not lose), plus the first and last point of the range. No I/O, no clock.
"""

from __future__ import annotations

import numpy as np


def keep_indices(values: np.ndarray, anomalous: np.ndarray, max_points: int) -> np.ndarray:
    """Sorted indices of the points to keep (all of them when they fit).

    `values` are in timestamp order; `anomalous` is a boolean mask of the same length.
    When the anomalies alone are more than `max_points`, the first `max_points` of
    them are kept (callers order them by importance first if that matters).
    """
    n = int(values.shape[0])
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    if n <= max_points:
        return np.arange(n)
    anomalies = np.flatnonzero(anomalous)
    if anomalies.size >= max_points:
        return anomalies[:max_points]
    budget = max_points - anomalies.size
    others = np.flatnonzero(~anomalous)
    if others.size <= budget:  # cannot happen when n > max_points, kept for clarity
        return np.sort(np.concatenate([anomalies, others]))
    ends = np.array([others[0], others[-1]]) if budget >= 2 else others[:1]
    buckets = max((budget - ends.size) // 2, 0)
    picked = [anomalies, ends]
    if buckets:
        own = values[others]
        starts = np.linspace(0, others.size, buckets + 1).astype(np.int64)[:-1]
        starts = np.unique(starts)
        lows = _arg_reduce(own, starts, np.minimum)
        highs = _arg_reduce(own, starts, np.maximum)
        picked += [others[lows], others[highs]]
    kept = np.unique(np.concatenate(picked))
    if kept.size > max_points:  # ends coinciding with extremes leave room, never excess
        kept = kept[:max_points]
    return kept


def _arg_reduce(values: np.ndarray, starts: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """Per bucket (`starts` of equal-count runs), the index of its min or max value."""
    extreme = ufunc.reduceat(values, starts)
    bucket = np.repeat(np.arange(starts.size), np.diff(np.append(starts, values.size)))
    hit = values == extreme[bucket]
    # the first hit of each bucket: hits ordered by bucket, then position
    positions = np.flatnonzero(hit)
    first = np.unique(bucket[positions], return_index=True)[1]
    return positions[first]
