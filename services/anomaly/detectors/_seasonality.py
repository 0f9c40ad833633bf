"""Season detection shared by the seasonal detectors (private to the package)."""

from __future__ import annotations

import numpy as np

# calendar periods a detected period is snapped to when it is within 2 % of one
CALENDAR_PERIODS_SECONDS = (3600.0, 86400.0, 604800.0)
_SNAP_TOLERANCE = 0.02
# a peak must rise this far above the lowest autocorrelation before it, so the
# slowly decaying autocorrelation of a trend or random walk is not a season
_MIN_PROMINENCE = 0.2


def autocorrelation(values: np.ndarray, max_lag: int) -> np.ndarray:
    """Biased sample autocorrelation at lags 0..max_lag of the detrended series.

    The biased estimator (divided by n, not n - lag) shrinks long lags, which
    favours a fundamental period over its multiples.
    """
    n = values.shape[0]
    positions = np.arange(n, dtype=np.float64)
    slope, intercept = np.polyfit(positions, values, 1)
    residual = values - (slope * positions + intercept)
    size = 1 << int(2 * n - 1).bit_length()
    spectrum = np.fft.rfft(residual, size)
    covariance = np.fft.irfft(spectrum * np.conj(spectrum), size)[: max_lag + 1]
    if covariance[0] <= 0.0:
        return np.zeros(max_lag + 1)
    return covariance / covariance[0]


def detect_period(values: np.ndarray, max_period: int, min_correlation: float) -> int | None:
    """The dominant season length in points, or None when there is none.

    Picks the lag with the highest autocorrelation among local peaks that are
    at least ``min_correlation`` and rise clearly above the dip before them.
    At least three cycles should fit in ``values`` (``max_period <= n // 3``).
    """
    max_period = min(max_period, values.shape[0] // 3)
    if max_period < 2:
        return None
    acf = autocorrelation(values, max_period + 1)
    best_lag, best_value = None, -np.inf
    for lag in range(2, max_period + 1):
        value = acf[lag]
        if value < min_correlation or value <= acf[lag - 1] or value < acf[lag + 1]:
            continue
        if value - acf[1:lag].min() < _MIN_PROMINENCE:
            continue
        if value > best_value:
            best_lag, best_value = lag, value
    return best_lag


def snap_period_seconds(period_seconds: float) -> float:
    """Snap a measured period to an hour, a day or a week when within 2 %.

    A period measured as ``lag * median interval`` is slightly off when the
    timestamps jitter; slots computed from it would drift through the day.
    """
    for calendar in CALENDAR_PERIODS_SECONDS:
        if abs(period_seconds - calendar) <= _SNAP_TOLERANCE * calendar:
            return calendar
    return period_seconds


def snap_lag(lag: int, interval: float) -> int:
    """A detected lag adjusted to a calendar period when ``lag * interval`` is near one.

    Noise often makes the autocorrelation peak one point early or late; a
    point-indexed season that is one point off drifts through the cycle.
    """
    if not interval > 0.0:
        return lag
    snapped = snap_period_seconds(lag * interval)
    return max(2, round(snapped / interval))


def describe_period(seconds: float) -> str:
    """Human words for a period in seconds (for explanations)."""
    for size, unit in ((604800.0, "week"), (86400.0, "day"), (3600.0, "hour"), (60.0, "minute")):
        if seconds >= size and abs(seconds / size - round(seconds / size)) < 1e-9:
            count = round(seconds / size)
            return f"{unit}" if count == 1 else f"{count}-{unit}"
    return f"{seconds:g}-second"
