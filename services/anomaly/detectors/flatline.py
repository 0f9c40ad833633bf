"""Flatline: the value stops changing for longer than the series ever does."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field

from .base import Detector, DetectorParams, PointScore, Scores
from .explain import fmt, learning_sentence
from .recursions import linear_recursion
from .scores import (
    empty_scores,
    score_from_surprise,
)
from .state import (
    FLOAT,
    INT,
    OPTIONAL_FLOAT,
    Codec,
    float_or_nan,
)


class FlatlineParams(DetectorParams):
    tolerance: float = Field(
        0.0, ge=0.0, description="largest step between points that counts as 'unchanged'"
    )
    alpha: float = Field(
        0.001, gt=0.0, lt=1.0, description="forgetting rate of the repeat frequency"
    )
    warmup: int = Field(30, ge=2, description="points learned before scoring")


class FlatlineDetector(Detector):
    """Run length of unchanged values against how often the series repeats.

    Catches a metric stuck at one value: a dead sensor, a frozen counter, an
    exporter serving a cached number. A step counts as a repeat when it moves
    by at most ``tolerance``. The detector learns the repeat frequency ``q``
    (exponentially forgotten counts with a Laplace prior,
    ``(repeats + 1) / (steps + 2)``); a run of ``r`` repeats in a row has
    probability ``q ** r`` if steps repeat independently.

    A series that never repeats flags a run of two or three identical values;
    an integer count that sits at 0 most of the time needs a long run.

    Parameters
    ----------
    tolerance : float, default 0.0
        Largest step treated as "no change" (units of the value).
    alpha : float, default 0.001
        Forgetting rate of the repeat counts (memory ~1/alpha steps).
    warmup : int, default 30
        Points learned before scoring.

    Score: ``1 - q ** r`` up to the shared knee (0.9999); beyond it the shared
    map ranks the surprise ``-r ln q`` (:func:`~.scores.score_from_surprise`),
    so a longer run always scores higher and no run scores 1. No value band:
    ``expected``, ``lower`` and ``upper`` are NaN (the threshold's direction
    rule lets such points pass in any direction); ``detail`` is the run
    length ``r``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(6)
    >>> values = rng.normal(30.0, 2.0, 200).round(1)
    >>> values[150:170] = values[149]  # stuck for 20 points
    >>> scores = FlatlineDetector().score(np.arange(200.0), values)
    >>> bool(scores.score[155] > 0.999), bool(scores.score[100] < 0.9)
    (True, True)
    """

    name: ClassVar[str] = "flatline"
    Params: ClassVar[type[DetectorParams]] = FlatlineParams
    params: FlatlineParams
    state_fields: ClassVar[dict[str, Codec]] = {
        "count": INT,
        "last": OPTIONAL_FLOAT,
        "run": INT,
        "repeats": FLOAT,
        "steps": FLOAT,
    }

    def reset(self) -> None:
        self._count = 0
        self._last: float | None = None
        self._run = 0  # repeats in a row ending at the last point
        self._repeats = 0.0  # forgotten count of repeated steps
        self._steps = 0.0  # forgotten count of steps

    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        n = values.shape[0]
        result = empty_scores(n, detail=True)
        if n == 0:
            return result
        previous_last = float_or_nan(self._last)
        if learn:
            previous = np.concatenate(([previous_last], values[:-1]))
        else:
            previous = np.full(n, previous_last)
        has_step = ~np.isnan(previous)
        with np.errstate(invalid="ignore"):
            repeat = has_step & (np.abs(values - previous) <= self.params.tolerance)
        if learn:
            run = self._runs(repeat)
            beta = np.where(has_step, 1.0 - self.params.alpha, 1.0)
            repeats_after = linear_recursion(beta, repeat.astype(np.float64), self._repeats)
            steps_after = linear_recursion(beta, has_step.astype(np.float64), self._steps)
            repeats_before = np.concatenate(([self._repeats], repeats_after[:-1]))
            steps_before = np.concatenate(([self._steps], steps_after[:-1]))
        else:
            run = np.where(repeat, self._run + 1, 0)
            repeats_before = np.full(n, self._repeats)
            steps_before = np.full(n, self._steps)
        repeat_rate = (repeats_before + 1.0) / (steps_before + 2.0)
        warm = self._seen_before(n, learn) >= self.warmup
        # -ln(q ** r): q ** r itself underflows on a long run
        surprise = -run * np.log(repeat_rate)
        result.score[:] = np.where(warm, score_from_surprise(surprise), 0.0)
        result.detail[:] = np.where(warm, run, np.nan)  # type: ignore[index]
        if learn:
            self._count += n
            self._last = float(values[-1])
            self._run = int(run[-1])
            self._repeats = float(repeats_after[-1])
            self._steps = float(steps_after[-1])
        return result

    def _runs(self, repeat: np.ndarray) -> np.ndarray:
        """Repeats in a row ending at each point, continuing the stored run."""
        index = np.arange(repeat.shape[0])
        last_change = np.maximum.accumulate(np.where(repeat, -1, index))
        return np.where(last_change < 0, self._run + index + 1, index - last_change)

    def explain(self, value: float, point: PointScore) -> str:
        if point.detail is None or math.isnan(point.detail):
            return learning_sentence("Flatline", self.warmup)
        run = int(point.detail)
        if run == 0:
            return f"Flatline: value {fmt(value)} changed from the previous point."
        rate = (self._repeats + 1.0) / (self._steps + 2.0)
        return (
            f"Flatline: the value has stayed at {fmt(value)} for {run} steps in a row, "
            f"while about {rate:.0%} of steps usually repeat (score {point.score:.3f})."
        )
