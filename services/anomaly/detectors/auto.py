"""auto: the default ensemble, record-breaking novelty on three views of a series.

A user who does not choose an algorithm gets this one. It has no knob that
depends on the series: every scale it uses is learned from the series itself.

How it works
------------
Three *channels* look at the series in different ways:

``level``
    the value itself;
``mean``
    the mean of the latest ``mean_window`` points (a level shift that stays
    inside the range of single noisy points still moves this one);
``seasonal``
    the change from the same time of day one season ago (a day by default),
    taken from a table of time slots, so irregular cadence and gaps are fine.

Each channel keeps an *envelope* of its own history: the highest and the
lowest value seen so far, each fading back towards the centre by one noise
unit every ``forget`` points (so a very old extreme does not mask new
anomalies for ever). A point is surprising in a channel when it breaks that
envelope; the surprise is the *excess* over the envelope in noise units, the
noise unit being the channel's exponentially weighted mean absolute change
between consecutive points (learned, no start-up bias). Under a stable
series records become rare (the envelope holds every past extreme), so the
rate of alerts falls as the detector learns, without any threshold fitted
to the series.

The ensemble excess is the largest channel excess, the secondary channels
weighted by ``mean_weight`` and ``seasonal_weight``. Right after an alert a
repeat is only reported if it is clearly worse: the excess is reduced by
``refractory_factor`` times the largest excess of the previous
``refractory`` points.

Score: ``1 - 0.01 ** (excess / 0.6)``, so the default alert threshold 0.99 is
reached when a channel breaks its record by 0.6 noise units. Band
(``lower``/``upper``): the level envelope widened by those 0.6 noise units;
``expected``: the mean of the previous ``mean_window`` points.

Everything is causal and vectorised: the envelopes are running maxima of the
values shifted by the cumulative fade, the noise units are first-order linear
recursions, the seasonal table is updated by a stable sort of the batch's
slots. ``score`` on a batch equals ``score_one`` point after point.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ._common import fmt, learning_sentence, linear_recursion
from .base import Detector, DetectorParams, PointScore, Scores

__all__ = ["AutoDetector", "AutoParams"]

#: Excess (in noise units) at which the score reaches 0.99, the default alert level.
EXCESS_AT_ALERT = 0.6
_ALERT_SCORE = 0.99
_SCORE_RATE = -math.log(1.0 - _ALERT_SCORE) / EXCESS_AT_ALERT
#: A seasonal reference older than this many seasons is stale (the slot missed a day).
_STALE_SEASONS = 1.5
#: Smallest noise unit, relative to the magnitude of the envelope.
_RELATIVE_FLOOR = 1e-9

CHANNELS = ("none", "level", "mean", "seasonal")
_LEVEL, _MEAN, _SEASONAL = 1, 2, 3


class AutoParams(DetectorParams):
    """Parameters of :class:`AutoDetector` (defaults suit most series)."""

    warmup: int = Field(100, ge=10, description="points learned before scores can be non-zero")
    memory: int = Field(
        1000, ge=10, description="points the noise unit is averaged over (EWMA 1/memory)"
    )
    forget: float = Field(
        3000.0, gt=0.0, description="points for a past extreme to fade by one noise unit"
    )
    mean_window: int = Field(10, ge=2, le=1000, description="points in the mean channel")
    mean_weight: float = Field(0.3, ge=0.0, le=1.0, description="weight of the mean channel")
    season_seconds: float = Field(
        86400.0, ge=0.0, description="season length in seconds; 0 turns the channel off"
    )
    season_slots: int = Field(288, ge=4, le=4096, description="time slots per season")
    seasonal_weight: float = Field(
        0.3, ge=0.0, le=1.0, description="weight of the seasonal channel"
    )
    refractory: int = Field(50, ge=0, le=10000, description="points a past alert damps repeats")
    refractory_factor: float = Field(
        0.5, ge=0.0, le=1.0, description="share of a recent excess a repeat must exceed"
    )


class AutoDetector(Detector):
    """Default ensemble: record-breaking novelty of the level, mean and seasonal change.

    Parameters
    ----------
    warmup : int, default 100
        Points learned before scores can be non-zero (the seasonal channel also
        waits for ``warmup`` seasonal comparisons).
    memory : int, default 1000
        Points the noise units are averaged over.
    forget : float, default 3000
        Points for a past extreme to fade by one noise unit.
    mean_window : int, default 10
        Points averaged by the mean channel.
    mean_weight : float, default 0.3
        Weight of the mean channel's excess.
    season_seconds : float, default 86400
        Season of the seasonal channel (0 turns it off).
    season_slots : int, default 288
        Time slots per season (288 is five minutes of a day).
    seasonal_weight : float, default 0.3
        Weight of the seasonal channel's excess.
    refractory : int, default 50
        Points during which a past excess damps new ones.
    refractory_factor : float, default 0.5
        Share of the largest recent excess subtracted from a new one.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(11)
    >>> values = 50.0 + rng.normal(0.0, 2.0, 2000)
    >>> values[1500] = 75.0
    >>> detector = AutoDetector()
    >>> scores = detector.score(np.arange(2000) * 60.0, values)
    >>> bool(scores.score[1500] > 0.999), bool(np.mean(scores.score[1000:1500] > 0.99) < 0.01)
    (True, True)
    >>> detector.explain(75.0, scores.point(1500)).split(":")[0]
    'auto (level)'
    """

    name: ClassVar[str] = "auto"
    Params: ClassVar[type[DetectorParams]] = AutoParams
    params: AutoParams

    # -- state -----------------------------------------------------------
    def reset(self) -> None:
        p = self.params
        self._count = 0
        self._last_value = math.nan
        self._noise = 0.0
        self._noise_count = 0
        self._level_hi, self._level_lo = -math.inf, math.inf
        self._tail = np.empty(0)
        self._mean_hi, self._mean_lo = -math.inf, math.inf
        slots = p.season_slots if p.season_seconds > 0 else 0
        self._slot_value = np.full(slots, math.nan)
        self._slot_time = np.full(slots, math.nan)
        self._resid_last = math.nan
        self._resid_noise = 0.0
        self._resid_count = 0
        self._resid_noise_count = 0
        self._resid_hi, self._resid_lo = -math.inf, math.inf
        self._recent = np.empty(0)

    def get_state(self) -> dict[str, Any]:
        return {
            "count": self._count,
            "last_value": _to_json(self._last_value),
            "noise": self._noise,
            "noise_count": self._noise_count,
            "level": [_to_json(self._level_lo), _to_json(self._level_hi)],
            "tail": _list_to_json(self._tail),
            "mean": [_to_json(self._mean_lo), _to_json(self._mean_hi)],
            "slot_value": _list_to_json(self._slot_value),
            "slot_time": _list_to_json(self._slot_time),
            "resid_last": _to_json(self._resid_last),
            "resid_noise": self._resid_noise,
            "resid_count": self._resid_count,
            "resid_noise_count": self._resid_noise_count,
            "resid": [_to_json(self._resid_lo), _to_json(self._resid_hi)],
            "recent": _list_to_json(self._recent),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._count = int(state["count"])
        self._last_value = _from_json(state["last_value"], math.nan)
        self._noise = float(state["noise"])
        self._noise_count = int(state["noise_count"])
        self._level_lo = _from_json(state["level"][0], math.inf)
        self._level_hi = _from_json(state["level"][1], -math.inf)
        self._tail = _list_from_json(state["tail"])
        self._mean_lo = _from_json(state["mean"][0], math.inf)
        self._mean_hi = _from_json(state["mean"][1], -math.inf)
        self._slot_value = _list_from_json(state["slot_value"])
        self._slot_time = _list_from_json(state["slot_time"])
        self._resid_last = _from_json(state["resid_last"], math.nan)
        self._resid_noise = float(state["resid_noise"])
        self._resid_count = int(state["resid_count"])
        self._resid_noise_count = int(state["resid_noise_count"])
        self._resid_lo = _from_json(state["resid"][0], math.inf)
        self._resid_hi = _from_json(state["resid"][1], -math.inf)
        self._recent = _list_from_json(state["recent"])

    @property
    def n_seen(self) -> int:
        return self._count

    @property
    def warmup(self) -> int:
        return self.params.warmup

    # -- scoring ---------------------------------------------------------
    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        n = values.shape[0]
        if n == 0:
            empty = np.empty(0)
            return Scores(empty, empty, empty, empty, empty)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            if learn:
                return self._learn(timestamps, values)
            return self._peek(timestamps, values)

    def _learn(self, ts: np.ndarray, vs: np.ndarray) -> Scores:
        p = self.params
        n = vs.shape[0]
        seen = np.arange(self._count, self._count + n)
        warm = seen >= p.warmup

        # noise unit: EW mean |change| before each point
        prev = np.concatenate(([self._last_value], vs[:-1]))
        noise_before, self._noise, self._noise_count = _ew_mean_before(
            np.abs(vs - prev), ~np.isnan(prev), p.memory, self._noise, self._noise_count
        )
        fade = noise_before / p.forget

        # level channel
        lo, hi, self._level_lo, self._level_hi = _envelope(vs, fade, self._level_lo, self._level_hi)
        unit = _unit(noise_before, lo, hi)
        level_x = _excess(vs, lo, hi) / unit

        # mean channel (mean of the latest mean_window points, this one included)
        seq = np.concatenate((self._tail, vs))
        means, expected = _rolling_means(seq, self._tail.shape[0], p.mean_window)
        mlo, mhi, self._mean_lo, self._mean_hi = _envelope(
            means, fade, self._mean_lo, self._mean_hi
        )
        mean_x = _excess(means, mlo, mhi) / _unit(noise_before, mlo, mhi)
        self._tail = seq[-p.mean_window :]

        # seasonal channel
        seasonal_x = np.zeros(n)
        if self._slot_value.shape[0]:
            seasonal_x = self._learn_seasonal(ts, vs)

        raw = np.where(warm, level_x, 0.0)
        chan = np.where(raw > 0.0, _LEVEL, 0)
        for weight, x, code in (
            (p.mean_weight, mean_x, _MEAN),
            (p.seasonal_weight, seasonal_x, _SEASONAL),
        ):
            wx = np.where(warm, weight * x, 0.0)
            better = wx > raw
            raw = np.where(better, wx, raw)
            chan = np.where(better, code, chan)
        raw = np.nan_to_num(raw, nan=0.0, posinf=np.finfo(np.float64).max)

        # refractory damping by the largest excess of the previous `refractory` points
        k = p.refractory
        if k > 0:
            history = np.concatenate((np.zeros(max(0, k - self._recent.shape[0])), self._recent))
            prior = _max_of_previous(np.concatenate((history, raw)), k)
            self._recent = np.concatenate((history, raw))[-k:]
        else:
            prior = np.zeros(n)
        final = np.maximum(raw - p.refractory_factor * prior, 0.0)

        self._count += n
        self._last_value = float(vs[-1])
        return self._result(final, chan, expected, lo, hi, unit, warm)

    def _learn_seasonal(self, ts: np.ndarray, vs: np.ndarray) -> np.ndarray:
        p = self.params
        n = vs.shape[0]
        slots = self._slot_value.shape[0]
        slot = _slot_of(ts, p.season_seconds, slots)
        order = np.argsort(slot, kind="stable")
        sorted_slot = slot[order]
        same = np.concatenate(([False], sorted_slot[1:] == sorted_slot[:-1]))
        ref_value = np.empty(n)
        ref_time = np.empty(n)
        # previous point of the same slot: the one before in sorted order, else the table
        prev_in_batch = np.concatenate(([0], order[:-1]))
        ref_value[order] = np.where(same, vs[prev_in_batch], self._slot_value[sorted_slot])
        ref_time[order] = np.where(same, ts[prev_in_batch], self._slot_time[sorted_slot])
        last_of_slot = np.concatenate((sorted_slot[1:] != sorted_slot[:-1], [True]))
        self._slot_value[sorted_slot[last_of_slot]] = vs[order[last_of_slot]]
        self._slot_time[sorted_slot[last_of_slot]] = ts[order[last_of_slot]]

        age = ts - ref_time
        defined = (age > 0.0) & (age < _STALE_SEASONS * p.season_seconds)
        out = np.zeros(n)
        idx = np.flatnonzero(defined)
        if idx.size == 0:
            return out
        resid = vs[idx] - ref_value[idx]
        prev = np.concatenate(([self._resid_last], resid[:-1]))
        seen = np.arange(self._resid_count, self._resid_count + idx.size)
        noise_before, self._resid_noise, self._resid_noise_count = _ew_mean_before(
            np.abs(resid - prev),
            ~np.isnan(prev),
            p.memory,
            self._resid_noise,
            self._resid_noise_count,
        )
        lo, hi, self._resid_lo, self._resid_hi = _envelope(
            resid, noise_before / p.forget, self._resid_lo, self._resid_hi
        )
        x = _excess(resid, lo, hi) / _unit(noise_before, lo, hi)
        out[idx] = np.where(seen >= p.warmup, x, 0.0)
        self._resid_count += idx.size
        self._resid_last = float(resid[-1])
        return out

    def _peek(self, ts: np.ndarray, vs: np.ndarray) -> Scores:
        """Score each point alone against the current model, learning nothing."""
        p = self.params
        n = vs.shape[0]
        warm = np.full(n, self._count >= p.warmup)
        noise = np.full(n, self._noise)
        lo, hi = np.full(n, self._level_lo), np.full(n, self._level_hi)
        unit = _unit(noise, lo, hi)
        level_x = _excess(vs, lo, hi) / unit
        tail = self._tail[-(p.mean_window - 1) :]
        means = (tail.sum() + vs) / (tail.shape[0] + 1)
        expected = np.full(n, self._tail.mean() if self._tail.shape[0] else math.nan)
        mlo, mhi = np.full(n, self._mean_lo), np.full(n, self._mean_hi)
        mean_x = _excess(means, mlo, mhi) / _unit(noise, mlo, mhi)
        seasonal_x = np.zeros(n)
        if self._slot_value.shape[0] and self._resid_count >= p.warmup:
            slot = _slot_of(ts, p.season_seconds, self._slot_value.shape[0])
            age = ts - self._slot_time[slot]
            defined = (age > 0.0) & (age < _STALE_SEASONS * p.season_seconds)
            resid = vs - self._slot_value[slot]
            rlo, rhi = np.full(n, self._resid_lo), np.full(n, self._resid_hi)
            rx = _excess(resid, rlo, rhi) / _unit(np.full(n, self._resid_noise), rlo, rhi)
            seasonal_x = np.where(defined, rx, 0.0)
        raw = np.where(warm, level_x, 0.0)
        chan = np.where(raw > 0.0, _LEVEL, 0)
        for weight, x, code in (
            (p.mean_weight, mean_x, _MEAN),
            (p.seasonal_weight, seasonal_x, _SEASONAL),
        ):
            wx = np.where(warm, weight * x, 0.0)
            better = wx > raw
            raw = np.where(better, wx, raw)
            chan = np.where(better, code, chan)
        raw = np.nan_to_num(raw, nan=0.0, posinf=np.finfo(np.float64).max)
        prior = float(self._recent.max()) if (p.refractory and self._recent.shape[0]) else 0.0
        final = np.maximum(raw - p.refractory_factor * prior, 0.0)
        return self._result(final, chan, expected, lo, hi, unit, warm)

    def _result(
        self,
        excess: np.ndarray,
        chan: np.ndarray,
        expected: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        unit: np.ndarray,
        warm: np.ndarray,
    ) -> Scores:
        score = np.where(warm, -np.expm1(-_SCORE_RATE * excess), 0.0)
        margin = EXCESS_AT_ALERT * unit
        return Scores(
            score=np.clip(score, 0.0, 1.0),
            expected=np.where(warm, expected, np.nan),
            lower=np.where(warm, lo - margin, np.nan),
            upper=np.where(warm, hi + margin, np.nan),
            detail=np.where(warm & (excess > 0.0), chan, 0).astype(np.float64),
        )

    # -- explanation -----------------------------------------------------
    def explain(self, value: float, point: PointScore) -> str:
        if math.isnan(point.expected) and math.isnan(point.upper):
            return learning_sentence("auto", self.warmup)
        code = int(point.detail or 0)
        if code == 0 or point.score <= 0.0:
            return (
                f"auto: value {fmt(value)} is within the range this series has shown "
                f"({fmt(point.lower)}–{fmt(point.upper)}); score {point.score:.3f}."
            )
        excess = -math.log1p(-min(point.score, 1.0 - 1e-16)) / _SCORE_RATE
        what = {
            _LEVEL: f"value {fmt(value)} breaks the range of its history "
            f"({fmt(point.lower)}–{fmt(point.upper)})",
            _MEAN: f"the mean of the latest {self.params.mean_window} points moved outside "
            f"its usual range (previous mean {fmt(point.expected)})",
            _SEASONAL: "the change from the same time one season ago is larger than ever "
            "seen recently",
        }[code]
        return (
            f"auto ({CHANNELS[code]}): {what}, by {excess:.2g} noise units; "
            f"score {point.score:.3f}."
        )


# -- kernels ------------------------------------------------------------------
def _ew_mean_before(
    x: np.ndarray, valid: np.ndarray, memory: int, mean0: float, count0: int
) -> tuple[np.ndarray, float, int]:
    """EW mean of the valid ``x`` seen before each point (running mean at first).

    The smoothing factor of the k-th valid sample is ``max(1 / memory, 1 / k)``;
    invalid samples leave the mean unchanged. Returns the mean before each
    point, the mean after the batch and the new count of valid samples.
    """
    counts = count0 + np.cumsum(valid)
    alpha = np.where(valid, np.maximum(1.0 / memory, 1.0 / np.maximum(counts, 1)), 0.0)
    after = linear_recursion(1.0 - alpha, alpha * np.where(valid, x, 0.0), mean0)
    before = np.concatenate(([mean0], after[:-1]))
    return before, float(after[-1]), int(counts[-1])


def _envelope(
    y: np.ndarray, fade: np.ndarray, lo0: float, hi0: float
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Fading envelope: ``hi[t] = max(y[t], hi[t-1] - fade[t])`` (and ``lo`` mirrored).

    Returns the envelope before each point and the envelope after the batch.
    """
    shift = np.cumsum(fade)
    hi_after = np.maximum(hi0, np.maximum.accumulate(y + shift)) - shift
    lo_after = np.minimum(lo0, np.minimum.accumulate(y - shift)) + shift
    hi_before = np.concatenate(([hi0], hi_after[:-1]))
    lo_before = np.concatenate(([lo0], lo_after[:-1]))
    return lo_before, hi_before, float(lo_after[-1]), float(hi_after[-1])


def _excess(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How far ``y`` lies outside ``[lo, hi]`` (0 inside, and 0 with no envelope yet)."""
    out = np.maximum(np.maximum(y - hi, lo - y), 0.0)
    return np.where(np.isfinite(out), out, 0.0)


def _unit(noise: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Noise unit usable as a denominator (a flat history still has a tiny unit)."""
    size = np.where(np.isfinite(hi), np.abs(hi), 0.0) + np.where(np.isfinite(lo), np.abs(lo), 0.0)
    return np.maximum(noise, _RELATIVE_FLOOR * np.maximum(size, 1.0))


def _rolling_means(seq: np.ndarray, start: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the latest ``window`` values ending at each of ``seq[start:]``, and before it.

    ``seq`` is the kept tail followed by the batch. Sums are taken relative to
    the first value so long batches of large numbers keep their precision.
    """
    ref = seq[0]
    cs = np.concatenate(([0.0], np.cumsum(seq - ref)))
    end = np.arange(start + 1, seq.shape[0] + 1)
    lo = np.maximum(end - window, 0)
    means = (cs[end] - cs[lo]) / (end - lo) + ref
    prev_end = end - 1
    prev_lo = np.maximum(prev_end - window, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = (cs[prev_end] - cs[prev_lo]) / (prev_end - prev_lo) + ref
    expected = np.where(prev_end > prev_lo, expected, np.nan)
    return means, expected


def _max_of_previous(seq: np.ndarray, k: int) -> np.ndarray:
    """For each of the last ``len(seq) - k`` entries, the max of the ``k`` entries before it."""
    windows = np.lib.stride_tricks.sliding_window_view(seq[:-1], k)
    return windows.max(axis=1)


def _slot_of(ts: np.ndarray, season: float, slots: int) -> np.ndarray:
    phase = np.mod(ts, season) / season
    return np.minimum((phase * slots).astype(np.int64), slots - 1)


def _to_json(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def _from_json(x: float | None, default: float) -> float:
    return default if x is None else float(x)


def _list_to_json(a: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(v) else v for v in a.astype(np.float64).tolist()]


def _list_from_json(a: list[float | None]) -> np.ndarray:
    return np.asarray([math.nan if v is None else v for v in a], dtype=np.float64)
