"""CUSUM: a sustained shift of the mean, accumulated point by point."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field

from .base import Detector, DetectorParams, PointScore, Scores
from .explain import fmt, learning_sentence
from .recursions import adaptive_alphas, ewm_mean_var
from .scores import (
    RELATIVE_SCALE_FLOOR,
    empty_scores,
    fill_band,
    safe_scale,
    score_from_surprise,
)
from .state import (
    FLOAT,
    INT,
    Codec,
)

# mean overshoot of a Gaussian random walk over a boundary (Siegmund's 0.583):
# P(S >= s) ~ exp(-2k (s + 0.583)) for the one-sided statistic in steady state
_OVERSHOOT = 0.583
_LN_TWO = math.log(2.0)
# points scored per vectorised step; a confirmed shift ends the step early
_CHUNK = 512
# points without a confirmed shift before the scalar loop hands back to chunks
_QUIET = 64


def _reflected_walk(steps: np.ndarray, start: float) -> np.ndarray:
    """``s[t] = max(0, s[t-1] + steps[t])`` from ``s[-1] = start``, vectorised.

    Lindley's recursion in closed form: ``s = C - min(-start, running min C)``
    with ``C`` the cumulative sum of the steps.
    """
    cumulative = np.cumsum(steps)
    return cumulative - np.minimum(np.minimum.accumulate(cumulative), -start)


class CusumParams(DetectorParams):
    alpha: float = Field(
        0.01, gt=0.0, lt=1.0, description="smoothing of the reference mean and variance"
    )
    k: float = Field(0.5, gt=0.0, description="allowance per point, in standard deviations")
    h: float = Field(
        5.0, gt=0.0, description="cumulative evidence (std units) that confirms a shift"
    )
    warmup: int = Field(50, ge=2, description="points learned before scoring")
    min_std: float = Field(0.0, ge=0.0, description="smallest standard deviation assumed")


class CusumDetector(Detector):
    """Two-sided tabular CUSUM against an adaptive reference.

    Catches level shifts too small to flag any single point: each point adds
    its deviation beyond an allowance of ``k`` standard deviations to a running
    sum, one for upward and one for downward shifts, and the sum is reset to 0
    whenever it would go negative. A shift of ``d`` standard deviations builds
    up about ``d - k`` per point.

    The reference mean and standard deviation are a slow EWMA of the series
    (equal weights until ``1 / count`` falls below ``alpha``). When a sum passes
    ``h`` the shift is confirmed: the reference jumps to the mean of the points
    since that sum last left 0 (the estimated change point) and both sums
    restart, so the detector settles on the new level instead of alarming for
    ever.

    Score: ``1 - p`` with ``p = min(1, 2 exp(-2k (S + 0.583)))``, the
    steady-state tail probability of the larger sum ``S`` (Siegmund's
    approximation; two sides, hence the 2), through the shared map
    (:func:`~.scores.score_from_surprise` on ``-ln p``), so beyond the knee
    (0.9999, ``S = 9.3`` with the defaults) a larger sum still scores higher
    and no sum scores 1. With the defaults the score passes 0.99 at
    ``S = 4.7`` and is 0.993 at ``S = h``. Band: reference mean ± 2.58 std
    (for single values; the sum itself is in ``detail``, signed).

    Parameters
    ----------
    alpha : float, default 0.01
        Smoothing of the reference mean and variance (memory ~2/alpha points).
    k : float, default 0.5
        Allowance in standard deviations; about half the smallest shift worth
        catching.
    h : float, default 5.0
        Decision interval in standard deviations: the sum that confirms a
        shift and re-baselines the reference.
    warmup : int, default 50
        Points learned before scoring (the sums start then).
    min_std : float, default 0.0
        Floor on the reference standard deviation.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(11)
    >>> values = np.concatenate([rng.normal(100, 2, 300), rng.normal(103, 2, 100)])
    >>> scores = CusumDetector().score(np.arange(400.0), values)
    >>> bool(scores.score[300:315].max() > 0.99), bool(np.median(scores.score[50:300]) < 0.9)
    (True, True)
    """

    name: ClassVar[str] = "cusum"
    Params: ClassVar[type[DetectorParams]] = CusumParams
    params: CusumParams
    state_fields: ClassVar[dict[str, Codec]] = {
        "count": INT,
        "ref_count": INT,
        "mean": FLOAT,
        "var": FLOAT,
        "up": FLOAT,
        "down": FLOAT,
        "up_sum": FLOAT,
        "up_n": INT,
        "down_sum": FLOAT,
        "down_n": INT,
    }

    def reset(self) -> None:
        self._count = 0  # points learned (warm-up)
        self._ref_count = 0  # points behind the reference (restarts after a shift)
        self._mean = 0.0
        self._var = 0.0
        self._up = 0.0
        self._down = 0.0
        # sum and count of the points since each sum last left 0
        self._up_sum = 0.0
        self._up_n = 0
        self._down_sum = 0.0
        self._down_n = 0

    def _surprise(self, evidence: np.ndarray) -> np.ndarray:
        """``-ln p`` of the larger sum, ``p = min(1, 2 exp(-2k (S + 0.583)))``.

        Kept as a log so a large sum keeps ranking (``p`` itself underflows).
        """
        surprise = 2.0 * self.params.k * (evidence + _OVERSHOOT) - _LN_TWO
        return np.where(evidence > 0.0, np.maximum(surprise, 0.0), 0.0)

    def _fill(
        self,
        result: Scores,
        where: slice,
        mean: np.ndarray,
        std: np.ndarray,
        up: np.ndarray,
        down: np.ndarray,
        warm: np.ndarray,
    ) -> None:
        """Rows ``where`` of ``result`` (the warm ones; the others keep no opinion)."""
        up, down = up[warm], down[warm]
        fill_band(
            result,
            np.arange(where.start, where.stop)[warm],
            score_from_surprise(self._surprise(np.maximum(up, down))),
            mean[warm],
            std[warm],
            detail=np.where(up >= down, up, -down),
        )

    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        n = values.shape[0]
        result = empty_scores(n, detail=True)
        p = self.params
        if not learn:
            # every point as if it were the next one
            std = float(safe_scale(np.sqrt(self._var), self._mean, p.min_std))
            warm = np.full(n, self._count >= p.warmup)
            z = np.where(warm, (values - self._mean) / std, 0.0)
            up = np.maximum(0.0, self._up + z - p.k)
            down = np.maximum(0.0, self._down - z - p.k)
            mean = np.full(n, self._mean)
            self._fill(result, slice(0, n), mean, np.full(n, std), up, down, warm)
            return result
        # vectorised chunks while shifts are rare; right after a confirmed
        # shift (often followed by more) a scalar loop avoids re-running chunks
        start = 0
        while start < n:
            start, shifted = self._vector_step(values, start, result)
            if shifted and start < n:
                start = self._scalar_run(values, start, result)
        return result

    def _vector_step(self, values: np.ndarray, start: int, result: Scores) -> tuple[int, bool]:
        """Score a chunk up to and including its first confirmed shift."""
        p = self.params
        chunk = values[start : start + _CHUNK]
        alphas = adaptive_alphas(p.alpha, self._ref_count, chunk.shape[0])
        mean_b, var_b, mean_a, var_a = ewm_mean_var(chunk, alphas, self._mean, self._var)
        std = safe_scale(np.sqrt(var_b), mean_b, p.min_std)
        warm = np.arange(self._count, self._count + chunk.shape[0]) >= p.warmup
        z = np.where(warm, (chunk - mean_b) / std, 0.0)
        up = _reflected_walk(z - p.k, self._up)
        down = _reflected_walk(-z - p.k, self._down)
        alarms = np.flatnonzero((up > p.h) | (down > p.h))
        stop = int(alarms[0]) if alarms.size else chunk.shape[0] - 1
        taken = slice(0, stop + 1)
        self._fill(
            result,
            slice(start, start + stop + 1),
            mean_b[taken],
            std[taken],
            up[taken],
            down[taken],
            warm[taken],
        )
        self._count += stop + 1
        self._ref_count += stop + 1
        self._mean = float(mean_a[stop])
        self._var = float(var_a[stop])
        self._up_sum, self._up_n = self._segment(chunk, up, stop, self._up_sum, self._up_n)
        self._down_sum, self._down_n = self._segment(
            chunk, down, stop, self._down_sum, self._down_n
        )
        self._up = float(up[stop])
        self._down = float(down[stop])
        if alarms.size:
            self._rebaseline()
        return start + stop + 1, bool(alarms.size)

    def _scalar_run(self, values: np.ndarray, start: int, result: Scores) -> int:
        """The same recursion point by point, until _QUIET points pass without a shift."""
        p = self.params
        alpha, k, h, warmup = p.alpha, p.k, p.h, p.warmup
        means: list[float] = []
        stds: list[float] = []
        ups: list[float] = []
        downs: list[float] = []
        quiet = 0
        position = start
        for x in values[start:].tolist():
            mean, var = self._mean, self._var
            std = max(math.sqrt(var), p.min_std, RELATIVE_SCALE_FLOOR * max(abs(mean), 1.0))
            z = (x - mean) / std if self._count >= warmup else 0.0
            up = max(0.0, self._up + z - k)
            down = max(0.0, self._down - z - k)
            means.append(mean)
            stds.append(std)
            ups.append(up)
            downs.append(down)
            self._ref_count += 1
            self._count += 1
            weight = max(alpha, 1.0 / self._ref_count)
            deviation = x - mean
            self._mean = mean + weight * deviation
            self._var = (1.0 - weight) * (var + weight * deviation * deviation)
            self._up, self._down = up, down
            if up > 0.0:
                self._up_sum, self._up_n = self._up_sum + x, self._up_n + 1
            else:
                self._up_sum, self._up_n = 0.0, 0
            if down > 0.0:
                self._down_sum, self._down_n = self._down_sum + x, self._down_n + 1
            else:
                self._down_sum, self._down_n = 0.0, 0
            position += 1
            if up > h or down > h:
                self._rebaseline()
                quiet = 0
            else:
                quiet += 1
                if quiet >= _QUIET:
                    break
        taken = slice(start, position)
        warm = np.arange(self._count - (position - start), self._count) >= warmup
        self._fill(
            result,
            taken,
            np.asarray(means),
            np.asarray(stds),
            np.asarray(ups),
            np.asarray(downs),
            warm,
        )
        return position

    @staticmethod
    def _segment(
        chunk: np.ndarray, sums: np.ndarray, stop: int, carried_sum: float, carried_n: int
    ) -> tuple[float, int]:
        """Sum and count of the points since ``sums`` last was 0, at ``stop``."""
        zeros = np.flatnonzero(sums[: stop + 1] == 0.0)
        if zeros.size:
            last_zero = int(zeros[-1])
            return float(chunk[last_zero + 1 : stop + 1].sum()), stop - last_zero
        return carried_sum + float(chunk[: stop + 1].sum()), carried_n + stop + 1

    def _rebaseline(self) -> None:
        """A shift is confirmed: move the reference to the level since the change."""
        if self._up >= self._down and self._up_n > 0:
            self._mean = self._up_sum / self._up_n
            self._ref_count = self._up_n
        elif self._down_n > 0:
            self._mean = self._down_sum / self._down_n
            self._ref_count = self._down_n
        self._up = self._down = 0.0
        self._up_sum = self._down_sum = 0.0
        self._up_n = self._down_n = 0

    def explain(self, value: float, point: PointScore) -> str:
        if math.isnan(point.expected) or point.detail is None:
            return learning_sentence("CUSUM", self.warmup)
        evidence = point.detail
        if evidence == 0.0:
            return (
                f"CUSUM: no accumulated shift; value {fmt(value)} is consistent with the "
                f"reference level {fmt(point.expected)}."
            )
        side = "up" if evidence > 0 else "down"
        return (
            f"CUSUM: the level looks shifted {side} from the reference {fmt(point.expected)} "
            f"(accumulated evidence {abs(evidence):.1f} standard deviations, "
            f"{self.params.h:g} confirms a shift); latest value {fmt(value)}."
        )
