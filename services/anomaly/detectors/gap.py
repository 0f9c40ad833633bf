"""Missing data: a point that arrives after an unusually long silence."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field

from .base import Detector, DetectorParams, InvalidInput, PointScore, Scores
from .explain import fmt, learning_sentence
from .robust import MAD_TO_SIGMA, MEAN_ABS_DEV_TO_SIGMA, row_median, sorted_quantile
from .scores import (
    empty_scores,
    upper_score,
)
from .state import (
    FLOAT_ARRAY,
    INT,
    OPTIONAL_FLOAT,
    Codec,
)
from .window import windows_ending_at


class GapParams(DetectorParams):
    window: int = Field(50, ge=3, description="latest intervals the usual cadence is taken from")
    jitter: float = Field(
        0.1, gt=0.0, description="relative variation of intervals always treated as normal"
    )


class GapDetector(Detector):
    """Interval since the previous point against the learned cadence.

    Catches missing data: a collector that stopped and came back, a batch job
    that skipped runs. Works on timestamps only; the values are ignored. The
    cadence is the median of the logarithm of the latest ``window`` intervals
    and its spread their robust standard deviation (MAD), so past gaps do not
    distort it; the spread is never taken below ``log(1 + jitter)``, which
    keeps perfectly regular series from alarming on clock jitter.

    Only long intervals are surprising: a point arriving early scores 0. A gap
    is scored on the first point after it (a detector scores points, and
    silence has none); with the defaults, on a regular series, an interval
    1.3x the cadence reaches 0.99 and a single missing point scores 1.

    Parameters
    ----------
    window : int, default 50
        Latest intervals used (at least 3). Warm-up is ``window + 1`` points.
    jitter : float, default 0.1
        Relative interval variation always treated as normal (0.1 = 10 %).

    Score: the one-sided normal score of
    ``z = (log interval - median) / spread`` on the shared scale (the normal
    tail up to 0.9999, then ranked: a longer silence always scores higher,
    never 1). No value band (``expected``,
    ``lower``, ``upper`` are NaN); ``detail`` is the interval divided by the
    usual one. Learning needs timestamps after the last learned one.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(9)
    >>> timestamps = np.cumsum(rng.normal(60.0, 2.0, 200))
    >>> timestamps[150:] += 600.0  # ten minutes of silence before point 150
    >>> scores = GapDetector().score(timestamps, np.zeros(200))
    >>> bool(scores.score[150] > 0.999), bool(np.median(scores.score[60:150]) < 0.9)
    (True, True)
    """

    name: ClassVar[str] = "gap"
    Params: ClassVar[type[DetectorParams]] = GapParams
    params: GapParams
    state_fields: ClassVar[dict[str, Codec]] = {
        "count": INT,
        "last_ts": OPTIONAL_FLOAT,
        "log_gaps": FLOAT_ARRAY,
    }

    def reset(self) -> None:
        self._count = 0
        self._last_ts: float | None = None
        self._log_gaps = np.empty(0)  # latest `window` log intervals, oldest first
        self._min_spread = math.log1p(self.params.jitter)

    @property
    def warmup(self) -> int:
        return self.params.window + 1

    @property
    def usual_interval(self) -> float:
        """Median interval learned so far (NaN before two points)."""
        if self._log_gaps.shape[0] == 0:
            return math.nan
        return math.exp(float(np.median(self._log_gaps)))

    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        n = timestamps.shape[0]
        result = empty_scores(n, detail=True)
        if n == 0:
            return result
        last = math.nan if self._last_ts is None else self._last_ts
        if learn:
            if timestamps[0] <= last:
                raise InvalidInput(
                    "timestamps must be after the last learned one; score late points "
                    "with learn=False"
                )
            intervals = np.diff(timestamps, prepend=last)
            # the very first point has no interval; nothing is learned from it
            known = ~np.isnan(intervals)
            log_gaps = np.log(intervals[known])
            offset = n - log_gaps.shape[0]
        else:
            intervals = timestamps - last
            known = intervals > 0.0  # NaN (no history) and late points: no opinion
            log_gaps = np.log(intervals[known])
            offset = 0
        width = self.params.window
        windows, first = windows_ending_at(self._log_gaps, log_gaps, width + 1, learn=learn)
        if windows.shape[0]:
            past, current = np.sort(windows[:, :-1], axis=1), windows[:, -1]
            cadence = sorted_quantile(past, 0.5)
            abs_dev = np.abs(past - cadence[:, None])
            spread = MAD_TO_SIGMA * row_median(abs_dev)
            spread = np.where(spread > 0.0, spread, MEAN_ABS_DEV_TO_SIGMA * abs_dev.mean(axis=1))
            spread = np.maximum(spread, self._min_spread)
            rows = np.flatnonzero(known)[first:] if not learn else np.arange(offset + first, n)
            result.score[rows] = upper_score((current - cadence) / spread)
            result.detail[rows] = np.exp(current - cadence)  # type: ignore[index]
        if learn:
            self._count += n
            self._last_ts = float(timestamps[-1])
            self._log_gaps = np.concatenate((self._log_gaps, log_gaps))[-width:]
        return result

    def explain(self, value: float, point: PointScore) -> str:
        if point.detail is None or math.isnan(point.detail):
            return learning_sentence("Gap", self.warmup)
        ratio = point.detail
        usual = self.usual_interval
        return (
            f"Gap: this point arrived after an interval {ratio:.1f}× the usual one "
            f"(about {fmt(usual)} s between points; score {point.score:.3f})."
        )
