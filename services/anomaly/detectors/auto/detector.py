"""The ``auto`` detector: composes the channels, the ensemble and the state.

Everything is causal and vectorised, and ``score`` on a batch gives the same
numbers as ``score_one`` point by point. A batch is a fixed number of array
passes: the value and the seasonal change go through the same 2-row kernel
(the noise units as one cumulative sum, a running mean then a closed-form
EWMA; the cumulative fade; one running maximum of the four faded series),
the mean is one convolution, the recent ranges are a running maximum within
each block and the maximum of the previous blocks, and the score, channel and
refractory damping are computed only where some channel has an excess. Work
arrays are reused from batch to batch (per thread). The state is bounded: a
few numbers per channel, the latest ``mean_window`` values, 10 block extremes
per row, the alerts of the last ``refractory`` points, and the slot table (at
most ``MAX_SLOTS`` floats, empty slots as runs).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..base import Detector, DetectorParams, PointScore, Scores
from ..explain import fmt, learning_sentence
from .ensemble import combine, peek_scores, score_of, strongest
from .jsonable import from_json, to_json
from .means import learn_means, peek_means
from .noise import Row, noise_units
from .params import (
    CHANNELS,
    EXCESS_AT_ALERT,
    LEVEL,
    MEAN,
    RECENT,
    RECENT_ROWS,
    RELATIVE_FLOOR,
    SCORE_RATE,
    SEASONAL,
    AutoParams,
)
from .ranges import Envelopes, RecentRanges, excess, fading_ranges, unit
from .refractory import Refractory
from .scratch import NO_POINTS, NO_VALUES, SharedScratch, scratch
from .season import SlotTable, seasonal_excess, seasonal_gate

__all__ = ["AutoDetector"]


class AutoDetector(Detector):
    """Default ensemble: record-breaking novelty of the level, recent mean and seasonal change.

    Parameters
    ----------
    warmup : int, default 100
        Points learned before scores can be non-zero (the seasonal channel
        also waits for ``warmup`` seasonal comparisons).
    memory : int, default 1000
        Points the noise units are averaged over.
    forget : float, default 3000
        Points for a past extreme of the level or seasonal channel to fade by
        one noise unit.
    mean_window : int, default 10
        Points averaged by the mean channel.
    recent : int, default 1000
        Points of the mean channel's recent range (kept as 10 blocks, so the
        range covers between ``recent`` and ``1.1 * recent`` points).
    mean_weight : float, default 0.5
        Weight of the mean channel's excess.
    recent_weight : float, default 0.25
        Weight of the recent channel: the value against its range over the
        same ``recent`` points (bounds how long one huge extreme can mask
        smaller ones in the level channel).
    season_seconds : float, default 86400
        Season of the seasonal channel (0 turns it off).
    seasonal_weight : float, default 0.3
        Weight of the seasonal channel's excess for a clearly seasonal series.
    refractory : int, default 50
        Points during which a past excess damps new ones (0: no damping).
    refractory_factor : float, default 0.5
        Share of the largest recent excess subtracted from a new one.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(11)
    >>> values = 50.0 + rng.normal(0.0, 2.0, 3000)
    >>> values[2500] = 75.0
    >>> detector = AutoDetector()
    >>> scores = detector.score(np.arange(3000) * 60.0, values)
    >>> bool(scores.score[2500] > 0.999), bool(np.mean(scores.score[1500:2500] > 0.99) < 0.01)
    (True, True)
    >>> detector.explain(75.0, scores.point(2500)).split(":")[0]
    'auto (level)'
    """

    name: ClassVar[str] = "auto"
    Params: ClassVar[type[DetectorParams]] = AutoParams
    params: AutoParams

    # -- state -----------------------------------------------------------
    def reset(self) -> None:
        p = self.params
        self._count = 0
        # the value's row: latest value, noise unit (mean, samples), fading range
        self._last_value = math.nan
        self._noise = 0.0
        self._noise_count = 0
        self._level_lo, self._level_hi = math.inf, -math.inf
        self._tail = np.empty(0)  # latest mean_window values
        self._recent = RecentRanges(p.recent)
        self._slots = SlotTable(p.season_seconds)
        # the seasonal change's row (resid): changes learned, then as the value's
        self._resid_count = 0
        self._resid_last = math.nan
        self._resid_noise = 0.0
        self._resid_noise_count = 0
        self._resid_lo, self._resid_hi = math.inf, -math.inf
        self._refractory = Refractory(p.refractory, p.refractory_factor)
        # weights of the level, mean and recent channels (a column)
        self._weights = np.array([[1.0], [p.mean_weight], [p.recent_weight]])

    def get_state(self) -> dict[str, Any]:
        return {
            "count": self._count,
            "last_value": to_json(self._last_value),
            "noise": [self._noise, self._noise_count],
            "level": [to_json(self._level_lo), to_json(self._level_hi)],
            "tail": self._tail.tolist(),
            **self._recent.to_json(self._count),  # blocks, block
            "first_times": self._slots.first_times.tolist(),
            "slots": self._slots.to_json(),
            "resid_count": self._resid_count,
            "resid_last": to_json(self._resid_last),
            "resid_noise": [self._resid_noise, self._resid_noise_count],
            "resid": [to_json(self._resid_lo), to_json(self._resid_hi)],
            "alerts": self._refractory.to_json(self._count),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._count = int(state["count"])
        self._last_value = from_json(state["last_value"], math.nan)
        self._noise, self._noise_count = float(state["noise"][0]), int(state["noise"][1])
        self._level_lo = from_json(state["level"][0], math.inf)
        self._level_hi = from_json(state["level"][1], -math.inf)
        self._tail = np.array(state["tail"], dtype=np.float64).reshape(-1)
        self._recent.load(state)
        self._slots.load(state["first_times"], state["slots"])
        self._resid_count = int(state["resid_count"])
        self._resid_last = from_json(state["resid_last"], math.nan)
        self._resid_noise = float(state["resid_noise"][0])
        self._resid_noise_count = int(state["resid_noise"][1])
        self._resid_lo = from_json(state["resid"][0], math.inf)
        self._resid_hi = from_json(state["resid"][1], -math.inf)
        self._refractory.load(state["alerts"], self._count)

    # -- scoring ---------------------------------------------------------
    def score(self, timestamps: Any, values: Any, *, learn: bool = True) -> Scores:
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        vs = np.asarray(values, dtype=np.float64).reshape(-1)
        if ts.shape == vs.shape and vs.shape[0] and _plainly_valid(ts, vs, learn):
            return self._score(ts, vs, learn)
        # empty, or something to refuse (or a sum that overflowed): the full checks
        return super().score(ts, vs, learn=learn)

    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        if values.shape[0] == 0:
            empty = np.empty(0)
            return Scores(empty, empty, empty, empty, empty)
        with SharedScratch(), np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            if learn:
                return self._learn(timestamps, values)
            return self._peek(timestamps, values)

    def _learn(self, ts: np.ndarray, vs: np.ndarray) -> Scores:
        """Score a batch point by point against the model before it, learning each."""
        p = self.params
        n = vs.shape[0]
        count0 = self._count
        cold = min(n, max(0, p.warmup - count0))  # leading points still warming up

        x, k, spos = self._rows(ts, vs)
        noise, after = self._noise_units(x, vs, k)
        ranges = [(self._level_lo, self._level_hi), (self._resid_lo, self._resid_hi)]
        env = fading_ranges(x, noise, p.forget, ranges[: x.shape[0]])
        noise0, lo0, hi0 = noise[0], env.lo[0], env.hi[0]
        expected, chan, unit0, common = self._channels(vs, env, noise0, cold)
        hot_mask = np.greater(
            np.max(chan, axis=0, out=scratch("strongest", (n,))),
            0.0,
            out=scratch("hot", (n,), np.bool_),
        )
        hot_mask[:cold] = False

        # seasonal change against its range, gated by how much the season explains
        season_at, season_x = NO_POINTS, NO_VALUES
        if k:
            ready = max(0, p.warmup - self._resid_count)
            prior = (self._resid_lo, self._resid_hi) if self._resid_count else None
            season_at, season_x = seasonal_excess(
                env, noise, k, spos, ready, cold, prior, (lo0, hi0)
            )
            if season_at.size:
                season_x *= p.seasonal_weight
                hot_mask[season_at] = True

        score, detail = self._ensemble(chan, hot_mask, unit0, common, season_at, season_x)
        margin = np.multiply(unit0, EXCESS_AT_ALERT, out=scratch("margin", (n,)))
        lower = lo0 - margin
        upper = hi0 + margin
        if cold:
            expected[:cold] = np.nan
            lower[:cold] = np.nan
            upper[:cold] = np.nan
        self._remember(vs, x, k, env, after)
        return Scores(score, expected, lower, upper, detail)

    def _rows(self, ts: np.ndarray, vs: np.ndarray) -> tuple[np.ndarray, int, np.ndarray | None]:
        """The kernel's rows: the value, and its change from one season ago if any.

        Row 1 holds ``k`` changes, of the batch points ``spos`` (None: all),
        padded with the last one. Learns the slot table.
        """
        p = self.params
        n = vs.shape[0]
        x = scratch("x", (2, n))
        x[0] = vs
        k, spos = 0, None
        if p.season_seconds > 0.0 and p.seasonal_weight > 0.0:
            k, spos = self._slots.changes(ts, vs, x[1], self._count)
        if not k:
            x = x[:1]
        elif k < n:
            x[1, k:] = x[1, k - 1]
        return x, k, spos

    def _noise_units(
        self, x: np.ndarray, vs: np.ndarray, k: int
    ) -> tuple[np.ndarray, list[tuple[float, int]]]:
        """Noise unit before each point of each row (EW mean absolute change), and after."""
        rows, n = x.shape
        acc = scratch("acc", (rows, n + 1))
        change = acc[:, 1:]
        np.subtract(x[:, 1:], x[:, :-1], out=change[:, 1:])
        change[0, 0] = vs[0] - self._last_value if self._count else 0.0
        channels: list[Row] = [(self._noise, self._noise_count, self._count == 0, n)]
        if k:
            change[1, 0] = x[1, 0] - self._resid_last if self._resid_count else 0.0
            channels.append((self._resid_noise, self._resid_noise_count, self._resid_count == 0, k))
        np.abs(change, out=change)
        return noise_units(acc, channels, self.params.memory)

    def _channels(
        self, vs: np.ndarray, env: Envelopes, noise0: np.ndarray, cold: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """Mean before each point; excesses of the level, mean and recent channels; the unit.

        Learns the tail and the recent ranges. The excesses are in noise units
        unless ``common`` (the last result): then they share the one noise
        unit, by which the hot points alone are divided later.
        """
        n = vs.shape[0]
        # mean of the latest mean_window points; recent ranges of the mean and the value
        recent = scratch("recent", (RECENT_ROWS, n))
        expected, self._tail = learn_means(self._tail, vs, self.params.mean_window, recent[0])
        recent[2] = vs
        np.negative(recent[0::2], out=recent[1::2])
        ranges, bound = self._recent.before_each(recent, self._count)
        # mean - hi, lo - mean, value - hi, lo - value
        gaps = np.subtract(recent, ranges, out=scratch("gaps", (RECENT_ROWS, n)))
        chan = scratch("chan", (3, n))  # excess of the level, mean and recent channels
        chan[0] = env.excess[0]
        np.maximum(gaps[0::2], gaps[1::2], out=chan[1:])
        # One noise unit for the three, unless a nearly flat history makes its floor
        # bind: |lo| and |hi| of the ranges of warm points are at most `size`.
        size = max(*env.ends(0, n), bound, 1.0)
        if self._count:
            size = max(size, abs(self._level_lo), abs(self._level_hi))
        common = cold < n and float(noise0[cold:].min()) >= RELATIVE_FLOOR * size
        if common:
            return expected, chan, noise0, True
        unit0 = unit(noise0, env.lo[0], env.hi[0])
        chan[0] /= unit0
        for r in (1, 2):
            chan[r] /= unit(noise0, -ranges[2 * r - 1], ranges[2 * r - 2])
        chan[~np.isfinite(chan)] = 0.0
        return expected, chan, unit0, False

    def _ensemble(
        self,
        chan: np.ndarray,
        hot_mask: np.ndarray,
        unit0: np.ndarray,
        common: bool,
        season_at: np.ndarray,
        season_x: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Score and channel code of each point, where some channel has an excess.

        Learns the refractory alerts.
        """
        n = chan.shape[1]
        hot = np.flatnonzero(hot_mask)
        score = np.zeros(n)
        detail = np.zeros(n)
        if hot.size:
            each = chan[:, hot]  # level, mean, recent
            each *= self._weights
            if common:
                each /= unit0[hot]
            raw, code = combine(each, hot, season_at, season_x)
            final = self._refractory.damp(raw, hot, n, self._count)
            score[hot] = score_of(final)
            detail[hot] = np.where(final > 0.0, code, 0.0)
        elif self._refractory.at.size:
            self._refractory.damp(NO_VALUES, hot, n, self._count)
        return score, detail

    def _remember(
        self,
        vs: np.ndarray,
        x: np.ndarray,
        k: int,
        env: Envelopes,
        after: list[tuple[float, int]],
    ) -> None:
        """The rows' state after the batch."""
        n = vs.shape[0]
        self._count += n
        self._last_value = float(vs[-1])
        (self._noise, self._noise_count) = after[0]
        self._level_lo, self._level_hi = env.after(0, n)
        if k:
            (self._resid_noise, self._resid_noise_count) = after[1]
            self._resid_lo, self._resid_hi = env.after(1, k)
            self._resid_count += k
            self._resid_last = float(x[1, k - 1])

    def _peek(self, ts: np.ndarray, vs: np.ndarray) -> Scores:
        """Score each point alone against the current model, learning nothing."""
        p = self.params
        n = vs.shape[0]
        warm = np.full(n, self._count >= p.warmup)
        noise = np.full(n, self._noise)
        lo, hi = np.full(n, self._level_lo), np.full(n, self._level_hi)
        level_unit = unit(noise, lo, hi)
        level_x = excess(vs, lo, hi) / level_unit
        means, expected_value = peek_means(self._tail, vs, p.mean_window)
        expected = np.full(n, expected_value)
        top = self._recent.top()
        mlo, mhi = np.full(n, -top[1]), np.full(n, top[0])
        mean_x = excess(means, mlo, mhi) / unit(noise, mlo, mhi)
        rlo, rhi = np.full(n, -top[3]), np.full(n, top[2])
        recent_x = excess(vs, rlo, rhi) / unit(noise, rlo, rhi)
        seasonal_x = np.zeros(n)
        if self._slots.values.shape[0] and self._resid_count >= p.warmup:
            reference, in_season = self._slots.references(ts)
            resid = vs - reference
            defined = in_season & ~np.isnan(resid)
            rlo, rhi = np.full(n, self._resid_lo), np.full(n, self._resid_hi)
            rx = excess(resid, rlo, rhi) / unit(np.full(n, self._resid_noise), rlo, rhi)
            gate = seasonal_gate(rhi - rlo, hi - lo)
            seasonal_x = np.where(defined, rx * gate, 0.0)
            seasonal_x[~np.isfinite(seasonal_x)] = 0.0
        raw, code = strongest(
            level_x,
            p.mean_weight * mean_x,
            p.seasonal_weight * seasonal_x,
            p.recent_weight * recent_x,
        )
        raw = np.where(warm & np.isfinite(raw), raw, 0.0)
        raw = self._refractory.peek(raw)
        return peek_scores(raw, code, expected, lo, hi, level_unit, warm)

    # -- explanation -----------------------------------------------------
    def explain(self, value: float, point: PointScore) -> str:
        if math.isnan(point.upper):
            return learning_sentence("auto", self.warmup)
        code = int(point.detail or 0)
        if code == 0 or point.score <= 0.0:
            return (
                f"auto: value {fmt(value)} is within the range this series has shown "
                f"({fmt(point.lower)}–{fmt(point.upper)}); score {point.score:.3f}."
            )
        excess_units = -math.log1p(-min(point.score, 1.0 - 1e-16)) / SCORE_RATE
        what = {
            LEVEL: f"value {fmt(value)} breaks the range of its history "
            f"({fmt(point.lower)}–{fmt(point.upper)})",
            MEAN: f"the mean of the latest {self.params.mean_window} points left the range "
            f"it kept over the latest {self.params.recent} points (previous mean "
            f"{fmt(point.expected)})",
            SEASONAL: "the change from the same time one season ago is larger than any "
            "seen recently",
            RECENT: f"value {fmt(value)} is outside the range of the latest "
            f"{self.params.recent} points",
        }[code]
        return (
            f"auto ({CHANNELS[code]}): {what}, by {excess_units:.2g} noise units; "
            f"score {point.score:.3f}."
        )


def _plainly_valid(ts: np.ndarray, vs: np.ndarray, learn: bool) -> bool:
    """Cheap sufficient check of a batch (finite values, finite increasing time stamps)."""
    if not math.isfinite(float(np.add.reduce(vs))):
        return False  # a non-finite value (or a huge sum: the full checks decide)
    if learn:
        if not (math.isfinite(ts[0]) and math.isfinite(ts[-1])):
            return False
        # strictly increasing between finite ends: every stamp is finite
        return ts.shape[0] == 1 or bool(np.greater(ts[1:], ts[:-1]).all())
    return math.isfinite(float(np.add.reduce(ts)))
