"""Refractory damping of ``auto``: right after an alert, a repeat counts only if clearly worse.

A point's excess is reduced by ``refractory_factor`` times the largest
alert-level excess (at least ``EXCESS_AT_ALERT``, before damping) of the
previous ``refractory`` points.
"""

from __future__ import annotations

import numpy as np

from .params import EXCESS_AT_ALERT

#: Hot points times recent alerts up to which the damping is taken pairwise.
_PAIRWISE_MAX = 1 << 11


class Refractory:
    """The recent alerts: their point numbers (sorted) and excesses."""

    def __init__(self, points: int, factor: float) -> None:
        self.points = points
        self.factor = factor
        self.at = np.empty(0, dtype=np.int64)
        self.excess = np.empty(0)

    def damp(self, raw: np.ndarray, hot: np.ndarray, n: int, count: int) -> np.ndarray:
        """Excess of the hot points after the damping; learns the alerts.

        ``hot``: the batch positions of ``raw``, of a batch of ``n`` points
        after ``count`` points.
        """
        k = self.points
        if k == 0:
            return raw
        alert = raw >= EXCESS_AT_ALERT
        stored = self.at.shape[0]
        if not alert.any():
            if not stored:
                return raw
            at, size = self.at, self.excess
        elif stored:
            at = np.concatenate((self.at, count + hot[alert]))
            size = np.concatenate((self.excess, raw[alert]))
        else:
            at, size = count + hot[alert], raw[alert]
        points = count + hot
        if points.shape[0] * at.shape[0] <= _PAIRWISE_MAX:
            # age - 1 in [0, k) as one unsigned comparison
            age = np.subtract.outer(points - 1, at).view(np.uint64)
            prior = np.where(age < k, size, 0.0).max(axis=1, initial=0.0)
        else:
            # many: the alerts [first, stop) of each point's window, by their times
            first = np.searchsorted(at, points - k)
            stop = np.searchsorted(at, points)
            prior = np.zeros(points.shape[0])
            some = np.flatnonzero(first < stop)
            if some.size:
                bounds = np.empty(2 * some.shape[0], dtype=np.intp)
                bounds[0::2] = first[some]
                bounds[1::2] = stop[some]
                prior[some] = np.maximum.reduceat(np.append(size, 0.0), bounds)[0::2]
        final = raw - self.factor * prior
        np.maximum(final, 0.0, out=final)
        # alerts that can still damp a later point (their times are sorted)
        keep = int(np.searchsorted(at, count + n - k))
        self.at, self.excess = at[keep:], size[keep:]
        return final

    def peek(self, raw: np.ndarray) -> np.ndarray:
        """Damping of points scored alone after the latest one (learns nothing)."""
        if not self.points:
            return raw
        prior = float(self.excess.max(initial=0.0))
        return np.maximum(raw - self.factor * prior, 0.0)

    # -- state -------------------------------------------------------------------
    def to_json(self, count: int) -> list[list[int] | list[float]]:
        """Ages (points since each alert, at ``count`` points) and excesses."""
        return [(count - self.at).tolist(), self.excess.tolist()]

    def load(self, alerts: list[list[float]], count: int) -> None:
        """Restore what :meth:`to_json` gave."""
        ages, excess = alerts
        self.at = count - np.array(ages, dtype=np.int64).reshape(-1)
        self.excess = np.array(excess, dtype=np.float64).reshape(-1)
