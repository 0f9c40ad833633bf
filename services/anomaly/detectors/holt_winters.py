"""Holt-Winters band: a point outside the forecast of level, trend and season."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from ._seasonality import detect_period, snap_lag
from .base import Detector, DetectorParams, InvalidParams, PointScore, Scores
from .explain import fmt, learning_sentence
from .scores import (
    RELATIVE_SCALE_FLOOR,
    empty_scores,
    fill_z,
)
from .state import (
    FLOAT,
    FLOAT_LIST,
    INT,
    OPTIONAL_FLOAT,
    Codec,
)

MAX_PERIOD = 20_000
# one-step errors beyond this many standard deviations update the model as if
# they were this large, so a spike does not bend level, trend and season
_CLIP_SD = 4.0
# errors needed before the clipping (and its standard deviation) is trusted
_CLIP_AFTER = 10
# smoothing of the mean interval between points (to place late points)
_INTERVAL_ALPHA = 0.01


class HoltWintersParams(DetectorParams):
    period_points: int | None = Field(
        None, ge=2, le=MAX_PERIOD, description="season length in points (None: detect)"
    )
    alpha: float = Field(0.1, gt=0.0, lt=1.0, description="smoothing of the level")
    beta: float = Field(0.01, ge=0.0, lt=1.0, description="smoothing of the trend")
    gamma: float = Field(0.1, ge=0.0, lt=1.0, description="smoothing of the season")
    damping: float = Field(0.98, gt=0.0, le=1.0, description="trend damping per step")
    band_alpha: float = Field(
        0.02, gt=0.0, lt=1.0, description="smoothing of the squared forecast errors"
    )
    min_correlation: float = Field(
        0.3, gt=0.0, lt=1.0, description="autocorrelation a detected season must reach"
    )
    warmup: int = Field(1000, ge=10, description="points learned before scoring")
    min_std: float = Field(0.0, ge=0.0, description="smallest standard deviation assumed")

    @model_validator(mode="after")
    def _warmup_holds_two_seasons(self) -> HoltWintersParams:
        if self.period_points is not None and self.warmup < 2 * self.period_points + 10:
            raise InvalidParams(
                "warmup",
                f"must be at least 2 × period_points + 10 = {2 * self.period_points + 10} "
                "to initialise the season",
            )
        return self


class HoltWintersDetector(Detector):
    """Additive Holt-Winters forecast with a band from its one-step errors.

    Catches deviations from a series that trends *and* repeats: a value off
    the forecast of level + damped trend + seasonal component. Compared with
    ``seasonal`` it follows a trend and adapts every slot at once through the
    level, so it suits growing traffic; it needs regular points (the season is
    counted in points; missing points shift it).

    Warm-up points are kept; at the end of warm-up the period is taken from
    ``period_points`` or detected from their autocorrelation (snapped to an
    hour, a day or a week of points when close), the components are
    initialised by a least-squares line and per-phase mean residuals over the
    first cycles, and the filter runs once over the warm-up points to settle.
    Without a clear season it is Holt's linear trend method. Errors beyond 4
    standard deviations update the model as 4, so spikes do not bend it.

    Parameters
    ----------
    period_points : int or None, default None
        Season length in points; None detects it.
    alpha, beta, gamma : float, default 0.1, 0.01, 0.1
        Smoothing of level, trend and season.
    damping : float, default 0.98
        Trend damping per step (1 = undamped).
    band_alpha : float, default 0.02
        Smoothing of the squared one-step errors behind the band.
    min_correlation : float, default 0.3
        Autocorrelation a detected season must reach.
    warmup : int, default 1000
        Points learned before scoring; with a given period at least
        ``2 * period_points + 10``; when detecting, seasons up to a third of it.
    min_std : float, default 0.0
        Floor on the standard deviation of the errors.

    Score: ``1 - P(|Z| >= |z|)`` with ``z`` the one-step error over its running
    standard deviation, on the shared scale (the normal tail up to 0.9999,
    then ranked, strictly rising with |z| and never 1); band: forecast ± 2.58
    std. Points scored with
    ``learn=False`` are placed in the season from their timestamp and the mean
    interval.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(10)
    >>> steps = np.arange(24 * 60)  # sixty days, hourly, growing traffic
    >>> values = 50 + 0.02 * steps + 20 * np.sin(2 * np.pi * steps / 24)
    >>> values = values + rng.normal(0, 2, steps.size)
    >>> values[1400] += 15
    >>> detector = HoltWintersDetector(period_points=24, warmup=24 * 14)
    >>> scores = detector.score(steps * 3600.0, values)
    >>> bool(scores.score[1400] > 0.999), bool(np.median(scores.score[24 * 14 :]) < 0.9)
    (True, True)
    """

    name: ClassVar[str] = "holt_winters"
    Params: ClassVar[type[DetectorParams]] = HoltWintersParams
    params: HoltWintersParams
    state_fields: ClassVar[dict[str, Codec]] = {
        "count": INT,
        "buffer_ts": FLOAT_LIST,
        "buffer_values": FLOAT_LIST,
        "period": INT,
        "level": FLOAT,
        "trend": FLOAT,
        "season": FLOAT_LIST,
        "phase": INT,
        "var": FLOAT,
        "var_count": INT,
        "last_ts": OPTIONAL_FLOAT,
        "interval": FLOAT,
        "interval_count": INT,
    }

    # -- state -------------------------------------------------------------
    def reset(self) -> None:
        self._count = 0
        self._buffer_ts: list[float] = []
        self._buffer_values: list[float] = []
        self._period = 0  # 0 until initialised
        self._level = 0.0
        self._trend = 0.0
        self._season: list[float] = []
        self._phase = 0  # season index of the next point
        self._var = 0.0
        self._var_count = 0
        self._last_ts: float | None = None
        self._interval = 0.0
        self._interval_count = 0

    @property
    def period(self) -> int:
        """Season length in points (0 before the end of warm-up)."""
        return self._period

    # -- initialisation ----------------------------------------------------
    def _initialise(self) -> None:
        values = np.asarray(self._buffer_values)
        intervals = np.diff(np.asarray(self._buffer_ts))
        intervals = intervals[intervals > 0.0]
        median_interval = float(np.median(intervals)) if intervals.size else 0.0
        self._buffer_ts, self._buffer_values = [], []
        period = self.params.period_points
        if period is None:
            lag = detect_period(values, values.shape[0] // 3, self.params.min_correlation)
            if lag is None:
                period = 1
            else:
                period = min(snap_lag(lag, median_interval), values.shape[0] // 2)
        # least-squares line and per-phase mean residual over whole cycles
        cycles = max(2, math.ceil(20 / period))
        span = min(values.shape[0] // period, cycles) * period
        positions = np.arange(span, dtype=np.float64)
        slope, intercept = np.polyfit(positions, values[:span], 1)
        residual = values[:span] - (intercept + slope * positions)
        season = residual.reshape(-1, period).mean(axis=0) if period > 1 else np.zeros(1)
        self._period = period
        self._season = (season - season.mean()).tolist()
        self._trend = float(slope)
        self._level = float(intercept - slope)  # level "before" the first point
        self._phase = 0
        self._run(values, record=False)

    # -- the filter --------------------------------------------------------
    def _run(self, values: np.ndarray, *, record: bool) -> tuple[list[float], list[float]]:
        """Learn ``values`` one step at a time; forecasts and stds if ``record``."""
        p = self.params
        period = self._period
        # a one-slot season would just mirror the level
        gamma = p.gamma if period > 1 else 0.0
        alpha, beta, phi = p.alpha, p.beta, p.damping
        band_alpha, min_std = p.band_alpha, p.min_std
        season = self._season
        level, trend, phase = self._level, self._trend, self._phase
        var, var_count = self._var, self._var_count
        forecasts: list[float] = []
        stds: list[float] = []
        for x in values.tolist():
            seasonal = season[phase]
            base = level + phi * trend
            forecast = base + seasonal
            error = x - forecast
            sd = max(math.sqrt(var), min_std, RELATIVE_SCALE_FLOOR * max(abs(forecast), 1.0))
            if record:
                forecasts.append(forecast)
                stds.append(sd)
            if var_count >= _CLIP_AFTER:
                limit = _CLIP_SD * sd
                error = min(max(error, -limit), limit)
            adjusted = forecast + error
            new_level = alpha * (adjusted - seasonal) + (1.0 - alpha) * base
            trend = beta * (new_level - level) + (1.0 - beta) * phi * trend
            season[phase] = gamma * (adjusted - new_level) + (1.0 - gamma) * seasonal
            level = new_level
            var_count += 1
            weight = max(band_alpha, 1.0 / var_count)
            var = (1.0 - weight) * var + weight * error * error
            phase += 1
            if phase == period:
                phase = 0
        self._level, self._trend, self._phase = level, trend, phase
        self._var, self._var_count = var, var_count
        return forecasts, stds

    def _learn_interval(self, timestamps: np.ndarray) -> None:
        last = self._last_ts
        interval, count = self._interval, self._interval_count
        for ts in timestamps.tolist():
            if last is not None and ts > last:
                count += 1
                weight = max(_INTERVAL_ALPHA, 1.0 / count)
                interval += weight * ((ts - last) - interval)
            last = ts
        self._last_ts, self._interval, self._interval_count = last, interval, count

    # -- scoring -----------------------------------------------------------
    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        n = values.shape[0]
        result = empty_scores(n, detail=True)
        if n == 0:
            return result
        if not learn:
            if self._period and self._count >= self.params.warmup:
                self._fill(result, slice(0, n), values, *self._preview(timestamps))
            return result
        start = 0
        if not self._period:
            start = min(n, self.params.warmup - self._count)
            self._buffer_ts.extend(timestamps[:start].tolist())
            self._buffer_values.extend(values[:start].tolist())
            self._learn_interval(timestamps[:start])
            self._count += start
            if self._count >= self.params.warmup:
                self._initialise()
        if start < n:
            forecasts, stds = self._run(values[start:], record=True)
            self._fill(
                result, slice(start, n), values[start:], np.asarray(forecasts), np.asarray(stds)
            )
            self._learn_interval(timestamps[start:])
            self._count += n - start
        return result

    def _preview(self, timestamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forecasts for points not learned, placed in the season by timestamp."""
        steps = np.ones(timestamps.shape[0], dtype=np.int64)
        if self._last_ts is not None and self._interval > 0.0:
            steps = np.round((timestamps - self._last_ts) / self._interval).astype(np.int64)
        phases = np.mod(self._phase - 1 + steps, self._period)
        season = np.asarray(self._season)[phases]
        forecasts = self._level + self.params.damping * self._trend + season
        floor = np.maximum(
            self.params.min_std, RELATIVE_SCALE_FLOOR * np.maximum(np.abs(forecasts), 1.0)
        )
        return forecasts, np.maximum(math.sqrt(self._var), floor)

    @staticmethod
    def _fill(
        result: Scores, rows: slice, values: np.ndarray, forecasts: np.ndarray, stds: np.ndarray
    ) -> None:
        fill_z(result, rows, (values - forecasts) / stds, forecasts, stds)

    def explain(self, value: float, point: PointScore) -> str:
        if math.isnan(point.expected) or point.detail is None:
            return learning_sentence("Holt-Winters", self.warmup)
        z = point.detail
        side = "above" if z >= 0 else "below"
        season = f"a {self._period}-point season" if self._period > 1 else "no season"
        return (
            f"Holt-Winters: value {fmt(value)} is {abs(z):.1f} standard deviations {side} the "
            f"forecast {fmt(point.expected)} (level, trend and {season}; band "
            f"{fmt(point.lower)}–{fmt(point.upper)})."
        )
