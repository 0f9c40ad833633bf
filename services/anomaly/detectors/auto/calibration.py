"""Compiled calibration of ``auto``'s local channel against the series' own past.

Each learned point adds its robust deviation ``z`` to a histogram of
``log2 z`` (4 bins per octave, from 1/8 to 2**17; smaller deviations, zeros
included, share the first bin). Samples are weighted by a factor growing with
time, so older ones count less (time constant ``calibration_seconds``); the
weights are rescaled when they grow large. The *typical-high* deviation is a
high quantile of that histogram, blended in log space with a prior while the
history is short: ``CALIBRATION_PRIOR`` weighing as
``CALIBRATION_PRIOR_POINTS`` points.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import _cache  # noqa: F401 (stamps the compiled functions with the package hash)
from .layout import HIST_BINS

#: log2 of the smallest binned deviation.
LOG2_MIN = -3.0

_PER_OCTAVE = 4.0
#: Weights are rescaled to 1 beyond this.
RESCALE_AT = 1e100


@njit(cache=True, nogil=True)
def bin_of(z: float) -> int:
    """Histogram bin of a deviation (bin 0 holds everything up to ``2 ** LOG2_MIN``)."""
    if z <= 2.0**LOG2_MIN:
        return 0
    b = int((math.log2(z) - LOG2_MIN) * _PER_OCTAVE)
    return min(b, HIST_BINS - 1)


@njit(cache=True, nogil=True)
def quantile(hist: np.ndarray, total: float, q: float) -> float:
    """The ``q`` quantile of the histogram (geometric within a bin)."""
    target = (1.0 - q) * total
    acc = 0.0
    for b in range(HIST_BINS - 1, -1, -1):
        h = hist[b]
        if h > 0.0 and acc + h >= target:
            top = (b + 1) / _PER_OCTAVE + LOG2_MIN
            return 2.0 ** (top - (target - acc) / h / _PER_OCTAVE)
        acc += h
    return 2.0**LOG2_MIN


@njit(cache=True, nogil=True)
def typical(
    hist: np.ndarray, total: float, points: float, q: float, prior: float, prior_points: float
) -> float:
    """The typical-high deviation: the quantile shrunk towards ``prior`` (in logs).

    ``points`` is the effective number of samples (the total over the latest weight).
    """
    if total <= 0.0:
        return prior
    share = points / (points + prior_points)
    own = max(quantile(hist, total, q), 2.0**LOG2_MIN)
    return math.exp(share * math.log(own) + (1.0 - share) * math.log(prior))
