"""auto: the default ensemble, record-breaking novelty on four views of a series.

A user who does not choose an algorithm gets this one. No setting depends on
the series: every scale it uses is learned from the series itself.

How it works
------------
Four *channels* look at the series in different ways, each against an
*envelope* (a range) of its own history:

``level``
    the value itself, against the range of everything seen so far. The range
    fades back by one noise unit every ``forget`` points, so a very old
    extreme does not mask new anomalies for ever.
``mean``
    the mean of the latest ``mean_window`` points, against the range of that
    mean over the latest ``recent`` points: a level shift or a slow slide
    that stays inside the long-term range is still new for the recent past.
``seasonal``
    the change from the same time of day one season ago (a day by default,
    from a table of time slots, so irregular cadence and gaps are fine),
    against the fading range of past changes. It counts only as much as the
    season explains the series: its weight falls to zero when the range of
    these changes is not clearly narrower than the range of the values.
``recent``
    the value against its range over the latest ``recent`` points, so one
    huge old extreme cannot mask smaller excursions in the ``level`` channel
    for longer than that.

A point is surprising in a channel when it breaks that channel's envelope.
The surprise is the *excess* over the envelope in noise units; the noise unit
is the exponentially weighted mean absolute change between consecutive
values (consecutive seasonal changes for the seasonal channel), learned
without start-up bias. In a stable series the envelope holds every past
extreme, so records and alerts become rare as the detector learns, with no
threshold fitted to the series.

The ensemble excess is the largest channel excess, the mean, seasonal and
recent channels weighted by ``mean_weight``, ``seasonal_weight`` and
``recent_weight``. Right after an
alert a repeat is reported only if it is clearly worse: the excess is reduced
by ``refractory_factor`` times the largest alert-level excess (see below) of
the previous ``refractory`` points.

Score: ``1 - 0.01 ** (excess / 0.5)``, so the default alert threshold 0.99 is
reached when a channel breaks its range by 0.5 noise units. Band
(``lower``/``upper``): the level channel's range widened by those 0.5 noise
units; ``expected``: the mean of the previous ``mean_window`` points.

Seasonal slots
--------------
The cadence (median of the first 16 intervals) sets the number of time slots
per season, one per expected point and at most ``_MAX_SLOTS`` (finer cadences
share a slot). Slots are counted from the first seasonal point, each centred
on a multiple of the slot width, so a regular series lands one slot further
at each point even with some jitter. The table holds, per slot, the last value
seen in that slot during the latest season (older ones are dropped), so a
point's reference is the value of its slot exactly one season (slot count)
before, or none.

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
most ``_MAX_SLOTS`` floats, empty slots as runs).
"""

from __future__ import annotations

import math
import threading
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ._common import fmt, learning_sentence
from .base import Detector, DetectorParams, PointScore, Scores

__all__ = ["CHANNELS", "EXCESS_AT_ALERT", "AutoDetector", "AutoParams"]

#: Excess (in noise units) at which the score reaches 0.99, the default alert level.
EXCESS_AT_ALERT = 0.5
_SCORE_RATE = -math.log(0.01) / EXCESS_AT_ALERT
#: Intervals between the first points whose median sets the cadence (and the slot count).
_CADENCE_INTERVALS = 16
#: Most time slots per season (beyond, several points share a slot): bounds the state.
_MAX_SLOTS = 1440
#: The seasonal weight is full when the range of seasonal changes is at most this
#: share of the range of the values, and falls linearly to 0 when they are equal.
_SEASONAL_FULL_RATIO = 0.5
#: Blocks the recent range is kept in (its length varies by one block).
_RECENT_BLOCKS = 10
#: Smallest noise unit, relative to the magnitude of the range.
_RELATIVE_FLOOR = 1e-9
#: Longest accumulated decay (e-folds) of one closed-form EWMA block.
_BLOCK_LOG_SPAN = 30.0
#: Longest mean window summed by a direct convolution (longer: prefix sums).
_CONVOLVE_MAX = 64
#: Hot points times recent alerts up to which the refractory damping is taken pairwise.
_PAIRWISE_MAX = 1 << 11

#: Channel names by the code stored in ``Scores.detail``.
CHANNELS = ("none", "level", "mean", "seasonal", "recent")
_LEVEL, _MEAN, _SEASONAL, _RECENT = 1, 2, 3, 4
#: Rows of the recent-range blocks: maxima of the mean, of -mean, of the value, of -value.
_RECENT_ROWS = 4


class AutoParams(DetectorParams):
    """Parameters of :class:`AutoDetector` (the defaults suit most series)."""

    warmup: int = Field(100, ge=10, description="points learned before scores can be non-zero")
    memory: int = Field(
        1000, ge=10, description="points the noise units average over (EWMA 1/memory)"
    )
    forget: float = Field(
        3000.0, gt=0.0, description="points for a past extreme to fade by one noise unit"
    )
    mean_window: int = Field(10, ge=2, le=1000, description="points in the mean channel")
    recent: int = Field(
        1000, ge=_RECENT_BLOCKS, le=1_000_000, description="points in the mean's recent range"
    )
    mean_weight: float = Field(0.5, ge=0.0, le=1.0, description="weight of the mean channel")
    recent_weight: float = Field(
        0.25, ge=0.0, le=1.0, description="weight of the value against its recent range"
    )
    season_seconds: float = Field(
        86400.0, ge=0.0, description="season in seconds; 0 turns the seasonal channel off"
    )
    seasonal_weight: float = Field(
        0.3, ge=0.0, le=1.0, description="largest weight of the seasonal channel"
    )
    refractory: int = Field(50, ge=0, le=10000, description="points a past alert damps repeats")
    refractory_factor: float = Field(
        0.5, ge=0.0, le=1.0, description="share of the largest recent excess taken off"
    )


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
        self._count = 0
        self._last_value = math.nan
        self._noise = 0.0
        self._noise_count = 0
        self._level_lo, self._level_hi = math.inf, -math.inf
        self._tail = np.empty(0)
        # maxima of the latest completed blocks, oldest first (-inf: none yet)
        self._blocks = np.full((_RECENT_ROWS, _RECENT_BLOCKS), -math.inf)
        self._block = np.full(_RECENT_ROWS, -math.inf)
        self._first_times = np.empty(0)
        self._slot_value = np.empty(0)
        self._anchor = math.nan  # time stamp of slot 0 (the first seasonal point)
        self._last_slot = math.nan  # slot number (from the anchor) of the latest point
        self._resid_count = 0
        self._resid_last = math.nan
        self._resid_noise = 0.0
        self._resid_noise_count = 0
        self._resid_lo, self._resid_hi = math.inf, -math.inf
        self._alert_at = np.empty(0, dtype=np.int64)  # point numbers of the recent alerts
        self._alert_excess = np.empty(0)

    def get_state(self) -> dict[str, Any]:
        return {
            "count": self._count,
            "last_value": _to_json(self._last_value),
            "noise": [self._noise, self._noise_count],
            "level": [_to_json(self._level_lo), _to_json(self._level_hi)],
            "tail": self._tail.tolist(),
            "blocks": self._blocks[:, _RECENT_BLOCKS - self._kept_blocks() :].tolist(),
            "block": _list_to_json(self._block),
            "first_times": self._first_times.tolist(),
            # slot values (0 where empty), [start, stop) runs of empty slots, anchor, latest slot
            "slots": [
                *_table_to_json(self._slot_value),
                _to_json(self._anchor),
                None if math.isnan(self._last_slot) else int(self._last_slot),
            ],
            "resid_count": self._resid_count,
            "resid_last": _to_json(self._resid_last),
            "resid_noise": [self._resid_noise, self._resid_noise_count],
            "resid": [_to_json(self._resid_lo), _to_json(self._resid_hi)],
            "alerts": [(self._count - self._alert_at).tolist(), self._alert_excess.tolist()],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._count = int(state["count"])
        self._last_value = _from_json(state["last_value"], math.nan)
        self._noise, self._noise_count = float(state["noise"][0]), int(state["noise"][1])
        self._level_lo = _from_json(state["level"][0], math.inf)
        self._level_hi = _from_json(state["level"][1], -math.inf)
        self._tail = np.array(state["tail"], dtype=np.float64).reshape(-1)
        blocks = np.array(state["blocks"], dtype=np.float64).reshape(_RECENT_ROWS, -1)
        self._blocks = np.full((_RECENT_ROWS, _RECENT_BLOCKS), -math.inf)
        self._blocks[:, _RECENT_BLOCKS - blocks.shape[1] :] = blocks
        self._block = _list_from_json(state["block"], -math.inf)
        self._first_times = np.array(state["first_times"], dtype=np.float64).reshape(-1)
        values, empty, anchor, last = state["slots"]
        self._slot_value = _table_from_json(values, empty)
        self._anchor = _from_json(anchor, math.nan)
        self._last_slot = math.nan if last is None else float(last)
        self._resid_count = int(state["resid_count"])
        self._resid_last = _from_json(state["resid_last"], math.nan)
        self._resid_noise = float(state["resid_noise"][0])
        self._resid_noise_count = int(state["resid_noise"][1])
        self._resid_lo = _from_json(state["resid"][0], math.inf)
        self._resid_hi = _from_json(state["resid"][1], -math.inf)
        ages, excess = state["alerts"]
        self._alert_at = self._count - np.array(ages, dtype=np.int64).reshape(-1)
        self._alert_excess = np.array(excess, dtype=np.float64).reshape(-1)

    def _kept_blocks(self) -> int:
        """Completed recent blocks kept (at most ``_RECENT_BLOCKS``)."""
        size = max(1, self.params.recent // _RECENT_BLOCKS)
        return min(_RECENT_BLOCKS, self._count // size)

    @property
    def n_seen(self) -> int:
        return self._count

    @property
    def warmup(self) -> int:
        return self.params.warmup

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
        shared = _SCRATCH_LOCK.acquire(blocking=False)
        _ACTIVE.arrays = _SHARED_SCRATCH if shared else None
        try:
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                if learn:
                    return self._learn(timestamps, values)
                return self._peek(timestamps, values)
        finally:
            _ACTIVE.arrays = None
            if shared:
                _SCRATCH_LOCK.release()

    def _learn(self, ts: np.ndarray, vs: np.ndarray) -> Scores:
        p = self.params
        n = vs.shape[0]
        count0 = self._count
        cold = min(n, max(0, p.warmup - count0))  # leading points still warming up

        # the value (row 0) and its change from one season ago (row 1: k points,
        # the points `spos` of the batch, padded) go through one kernel
        x = _scratch("x", (2, n))
        x[0] = vs
        k, spos = self._seasonal_changes(ts, vs, x[1])
        rows = 2 if k else 1
        if not k:
            x = x[:1]
        elif k < n:
            x[1, k:] = x[1, k - 1]
        # noise unit: EW mean absolute change before each point
        acc = _scratch("acc", (rows, n + 1))
        change = acc[:, 1:]
        np.subtract(x[:, 1:], x[:, :-1], out=change[:, 1:])
        change[0, 0] = vs[0] - self._last_value if count0 else 0.0
        if k:
            change[1, 0] = x[1, 0] - self._resid_last if self._resid_count else 0.0
        np.abs(change, out=change)
        noise, after = self._noise_units(acc, k)
        # fading ranges: hi[t] = max(hi0, max_{j<t} x[j] + S[j]) - S[t-1], S the cumulative fade
        fade = _scratch("fade", (rows, n + 1))
        fade[:, 0] = 0.0
        np.divide(noise, p.forget, out=fade[:, 1:])
        np.cumsum(fade[:, 1:], axis=1, out=fade[:, 1:])
        top = _scratch("top", (2 * rows, n + 1))
        top[0, 0] = self._level_hi
        top[rows, 0] = -self._level_lo
        if k:
            top[1, 0] = self._resid_hi
            top[3, 0] = -self._resid_lo
        np.add(x, fade[:, 1:], out=top[:rows, 1:])
        np.subtract(fade[:, 1:], x, out=top[rows:, 1:])
        np.maximum.accumulate(top, axis=1, out=top)
        hi = np.subtract(top[:rows, :n], fade[:, :n], out=_scratch("hi", (rows, n)))
        lo = np.subtract(fade[:, :n], top[rows:, :n], out=_scratch("lo", (rows, n)))
        excess = np.subtract(x, hi, out=_scratch("excess", (rows, n)))
        below = np.subtract(lo, x, out=_scratch("below", (rows, n)))
        np.maximum(excess, below, out=excess)  # positive outside the range
        noise0, lo0, hi0 = noise[0], lo[0], hi[0]

        # mean of the latest mean_window points; recent ranges of the mean and the value
        recent = _scratch("recent", (_RECENT_ROWS, n))
        expected = self._means(vs, recent[0])
        recent[2] = vs
        np.negative(recent[0::2], out=recent[1::2])
        ranges, bound = self._recent_ranges(recent)
        # mean - hi, lo - mean, value - hi, lo - value
        gaps = np.subtract(recent, ranges, out=_scratch("gaps", (_RECENT_ROWS, n)))
        chan = _scratch("chan", (3, n))  # excess of the level, mean and recent channels
        chan[0] = excess[0]
        np.maximum(gaps[0::2], gaps[1::2], out=chan[1:])
        # One noise unit for the three, unless a nearly flat history makes its floor
        # bind: |lo| and |hi| of the ranges of warm points are at most `size`.
        size = max(abs(top[0, n]), abs(top[rows, n]), bound, 1.0)
        if count0:
            size = max(size, abs(self._level_lo), abs(self._level_hi))
        common = cold < n and float(noise0[cold:].min()) >= _RELATIVE_FLOOR * size
        if common:
            unit0 = noise0
        else:
            unit0 = _unit(noise0, lo0, hi0)
            chan[0] /= unit0
            for r in (1, 2):
                chan[r] /= _unit(noise0, -ranges[2 * r - 1], ranges[2 * r - 2])
            chan[~np.isfinite(chan)] = 0.0
        hot_mask = np.greater(
            np.max(chan, axis=0, out=_scratch("strongest", (n,))),
            0.0,
            out=_scratch("hot", (n,), np.bool_),
        )
        hot_mask[:cold] = False

        # seasonal change against its range, gated by how much the season explains
        season_at = _NO_POINTS
        if k:
            ready = max(0, p.warmup - self._resid_count)
            cand = np.flatnonzero(excess[1, ready:k] > 0.0)
            if cand.size:
                cand += ready
                at = cand if spos is None else spos[cand]
                if at[0] < cold:
                    keep = at >= cold
                    cand, at = cand[keep], at[keep]
                lo1, hi1 = lo[1, cand], hi[1, cand]
                unit1 = noise[1, cand]
                size1 = max(abs(top[1, k]), abs(top[3, k]), 1.0)
                if self._resid_count:
                    size1 = max(size1, abs(self._resid_lo), abs(self._resid_hi))
                if cand.size and float(unit1.min()) < _RELATIVE_FLOOR * size1:
                    unit1 = _unit(unit1, lo1, hi1)
                # _seasonal_gate (a NaN gate, from two empty ranges, ends up as 0 below)
                gate = hi1 - lo1
                gate /= hi0[at] - lo0[at]
                np.subtract(1.0, gate, out=gate)
                np.clip(gate / (1.0 - _SEASONAL_FULL_RATIO), 0.0, 1.0, out=gate)
                season_x = excess[1, cand] / unit1
                season_x *= gate
                season_x *= p.seasonal_weight
                season_at = at
                hot_mask[at] = True

        # the ensemble, where some channel has an excess
        hot = np.flatnonzero(hot_mask)
        score = np.zeros(n)
        detail = np.zeros(n)
        if hot.size:
            each = chan[:, hot]  # level, mean, recent
            if common:
                each *= self._weights
                each /= unit0[hot]
            else:
                each *= self._weights
            if season_at.size:
                # level, mean, seasonal, recent: the order ties are resolved in
                four = np.zeros((4, hot.shape[0]))
                four[:2] = each[:2]
                four[3] = each[2]
                four[2, np.searchsorted(hot, season_at)] = season_x
                each = four
                codes = _CODES
            else:
                codes = _CODES_NO_SEASON
            raw = each.max(axis=0)
            if not math.isfinite(float(raw.sum())):
                each[~np.isfinite(each)] = 0.0
                raw = each.max(axis=0)
            np.maximum(raw, 0.0, out=raw)
            code = codes[np.argmax(each >= raw, axis=0)]
            final = self._damp(raw, hot, n)
            score[hot] = -np.expm1(-_SCORE_RATE * final)
            detail[hot] = np.where(final > 0.0, code, 0.0)
        elif self._alert_at.size:
            self._damp(_NO_VALUES, hot, n)

        margin = np.multiply(unit0, EXCESS_AT_ALERT, out=_scratch("margin", (n,)))
        lower = lo0 - margin
        upper = hi0 + margin
        if cold:
            expected[:cold] = np.nan
            lower[:cold] = np.nan
            upper[:cold] = np.nan

        # the new state
        self._count = count0 + n
        self._last_value = float(vs[-1])
        (self._noise, self._noise_count) = after[0]
        self._level_hi = float(top[0, n] - fade[0, n])
        self._level_lo = float(fade[0, n] - top[rows, n])
        if k:
            (self._resid_noise, self._resid_noise_count) = after[1]
            self._resid_hi = float(top[1, k] - fade[1, k])
            self._resid_lo = float(fade[1, k] - top[3, k])
            self._resid_count += k
            self._resid_last = float(x[1, k - 1])
        return Scores(score, expected, lower, upper, detail)

    @property
    def _weights(self) -> np.ndarray:
        """Weights of the level, mean and recent channels (a column)."""
        weights = self.__dict__.get("_weight_column")
        if weights is None:
            p = self.params
            weights = np.array([[1.0], [p.mean_weight], [p.recent_weight]])
            self.__dict__["_weight_column"] = weights
        return weights

    def _means(self, vs: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Mean of the latest ``mean_window`` points at each point (into ``out``); the one before.

        Learns the tail. Near the start of a series the windows are shorter.
        """
        w = self.params.mean_window
        tail = self._tail
        n = vs.shape[0]
        if tail.shape[0] == w and w <= _CONVOLVE_MAX:
            # the common case of _rolling_means: full windows, relative to the oldest value
            ref = tail[0]
            rel = _scratch("seq", (w + n,))
            np.subtract(tail, ref, out=rel[:w])
            np.subtract(vs, ref, out=rel[w:])
            sums = np.convolve(rel, _ones(w), "valid")
            sums /= w
            sums += ref
            out[:] = sums[1:]
            self._tail = vs[n - w :].copy() if n >= w else np.concatenate((tail[n:], vs))
            return sums[:-1]
        seq = np.concatenate((tail, vs))
        out[:], expected = _rolling_means(seq, tail.shape[0], w)
        self._tail = seq[max(0, seq.shape[0] - w) :].copy()
        return expected

    def _noise_units(self, acc: np.ndarray, k: int) -> tuple[np.ndarray, list[tuple[float, int]]]:
        """Noise unit before each point of each row, and (mean, sample count) after.

        ``acc[:, 1:]`` holds the absolute changes (used as scratch). Row 0: the
        value's changes (all points); row 1, if any: those of the seasonal
        change (the first ``k`` entries; the rest is padding). The k-th sample
        of a row is weighted ``max(1 / memory, 1 / k)`` (a running mean at
        first, an EWMA after), all rows by one cumulative sum: ``y[t] =
        (y0 + sum_{j<t} gain[j] x[j]) * decay[t]``.
        """
        memory = self.params.memory
        rows, n = acc.shape[0], acc.shape[1] - 1
        channels = [(self._noise, self._noise_count, self._count == 0, n)]
        if k:
            channels.append((self._resid_noise, self._resid_noise_count, self._resid_count == 0, k))
        if n > _ew_span(memory):
            # longer than one closed-form block: row by row, block by block
            noise = np.empty((rows, n))
            after = []
            for r, (mean0, count0, first, length) in enumerate(channels):
                before, mean, count = _ew_mean_before(
                    acc[r, 1 : length + 1], mean0, count0, memory, first_ever=first
                )
                noise[r, :length] = before
                noise[r, length:] = mean
                after.append((mean, count))
            return noise, after
        gain, decay = _ew_vectors(memory, n)
        for r, c in enumerate(channels):
            acc[r, 0] = c[0]
        if all(c[1] >= memory - 1 for c in channels):
            gains, decays = gain[:n], decay[: n + 1]  # the EWMA regime (also at sample `memory`)
        else:
            gains, decays = _scratch("gains", (rows, n)), _scratch("decays", (rows, n + 1))
            for r, (_, count0, first, _) in enumerate(channels):
                if count0 >= memory - 1:
                    gains[r], decays[r] = gain[:n], decay[: n + 1]
                else:
                    _ramp_vectors(count0, first, memory, gain, gains[r], decays[r])
        np.multiply(acc[:, 1:], gains, out=acc[:, 1:])
        np.cumsum(acc, axis=1, out=acc)
        after = []
        for r, (_, count0, first, length) in enumerate(channels):
            d = decays[length] if decays.ndim == 1 else decays[r, length]
            after.append((float(acc[r, length] * d), count0 + length - first))
        noise = acc[:, :n]
        noise *= decays[..., :n]
        return noise, after

    def _recent_range(self, rows: np.ndarray) -> np.ndarray:
        """Maximum of each row over the completed recent blocks and the open one, before each point.

        The recent points are kept as the maxima of ``_RECENT_BLOCKS`` blocks
        of ``recent / 10`` points plus those of the open block; a minimum is
        kept as the maximum of the negated series.
        """
        return self._recent_ranges(rows)[0].copy()

    def _recent_ranges(self, rows: np.ndarray) -> tuple[np.ndarray, float]:
        """:meth:`_recent_range`, and a bound on the magnitude of every range.

        One running maximum per block (a leading column holds what came before
        the block's first point), then the maximum of the previous blocks.
        """
        size = max(1, self.params.recent // _RECENT_BLOCKS)
        k, n = rows.shape
        offset = self._count % size
        nb = -(-(offset + n) // size)
        grid = _scratch("grid", (k, nb, size + 1))
        grid[:, :, 0] = -np.inf
        if offset == 0 and n == nb * size:
            grid[:, :, 1:] = rows.reshape(k, nb, size)
        else:
            flat = _scratch("flat", (k, nb * size))
            flat[:, :offset] = -np.inf
            flat[:, offset + n :] = -np.inf
            flat[:, offset : offset + n] = rows
            grid[:, :, 1:] = flat.reshape(k, nb, size)
            if offset:
                grid[:, 0, 0] = self._block
        np.maximum.accumulate(grid, axis=2, out=grid)
        ends = grid[:, :, size]  # maxima of the blocks (the first with the open block's)
        # the _RECENT_BLOCKS completed blocks before each block
        history = np.concatenate((self._blocks, ends), axis=1)
        prior = _window_max(history[:, :-1], _RECENT_BLOCKS)
        out = _scratch("ranges", (k, nb, size))
        np.maximum(grid[:, :, :size], prior[:, :, None], out=out)
        out = out.reshape(k, nb * size)
        bound = float(history.max())
        if (offset + n) % size:
            self._blocks = history[:, nb - 1 : nb - 1 + _RECENT_BLOCKS].copy()
            self._block = ends[:, -1].copy()
        else:
            self._blocks = history[:, nb:].copy()
            self._block = np.full(k, -np.inf)
        return out[:, offset : offset + n], bound

    def _damp(self, raw: np.ndarray, hot: np.ndarray, n: int) -> np.ndarray:
        """Excess of the hot points after the refractory damping; learns the alerts.

        A point's excess is reduced by ``refractory_factor`` times the largest
        alert-level excess (at least ``EXCESS_AT_ALERT``, before damping) of
        the previous ``refractory`` points. ``hot``: the batch positions of
        ``raw``, of a batch of ``n`` points.
        """
        p = self.params
        k = p.refractory
        if k == 0:
            return raw
        alert = raw >= EXCESS_AT_ALERT
        stored = self._alert_at.shape[0]
        if not alert.any():
            if not stored:
                return raw
            at, size = self._alert_at, self._alert_excess
        else:
            count0 = self._count
            if stored:
                at = np.concatenate((self._alert_at, count0 + hot[alert]))
                size = np.concatenate((self._alert_excess, raw[alert]))
            else:
                at, size = count0 + hot[alert], raw[alert]
        points = self._count + hot
        final = raw
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
        final = raw - p.refractory_factor * prior
        np.maximum(final, 0.0, out=final)
        # alerts that can still damp a later point (their times are sorted)
        keep = int(np.searchsorted(at, self._count + n - k))
        self._alert_at, self._alert_excess = at[keep:], size[keep:]
        return final

    def _seasonal_changes(
        self, ts: np.ndarray, vs: np.ndarray, out: np.ndarray
    ) -> tuple[int, np.ndarray | None]:
        """Change of each point from its reference one season back, for those that have one.

        Writes the changes into ``out`` and returns ``(count, points)``:
        ``points`` are their positions in the batch (None: every point).
        Learns the cadence first, then updates the slot table.
        """
        p = self.params
        if p.season_seconds <= 0.0 or p.seasonal_weight <= 0.0:
            return 0, None
        n = ts.shape[0]
        start = self._learn_cadence(ts) if self._count <= _CADENCE_INTERVALS else 0
        if not self._slot_value.shape[0] or start >= n:
            return 0, None
        if not start:
            return self._references(ts, vs, out)
        count, points = self._references(ts[start:], vs[start:], out)
        if count:
            points = np.arange(start, n) if points is None else points + start
        return count, points

    def _learn_cadence(self, ts: np.ndarray) -> int:
        """Learn the cadence from the first points; index of the first seasonal point.

        The median of the first ``_CADENCE_INTERVALS`` intervals sets the
        number of time slots per season (one per expected point, at most
        ``_MAX_SLOTS``). The points used for it are not entered in the table.
        """
        missing = _CADENCE_INTERVALS + 1 - self._first_times.shape[0]
        self._first_times = np.concatenate((self._first_times, ts[:missing]))
        if self._first_times.shape[0] <= _CADENCE_INTERVALS:
            return ts.shape[0]
        gaps = sorted(np.diff(self._first_times).tolist())
        half = len(gaps) // 2
        cadence = gaps[half] if len(gaps) % 2 else 0.5 * (gaps[half - 1] + gaps[half])
        self._first_times = np.empty(0)
        slots = min(_MAX_SLOTS, int(round(self.params.season_seconds / cadence)))
        if slots >= 4:
            self._slot_value = np.full(slots, math.nan)
        return missing

    def _slot_numbers(self, ts: np.ndarray) -> np.ndarray:
        """Slot number of each time stamp, counted from the anchor (float, integral)."""
        width = self.params.season_seconds / self._slot_value.shape[0]
        g = np.subtract(ts, self._anchor, out=_scratch("slot", ts.shape))
        np.divide(g, width, out=g)
        return np.rint(g, out=g)

    def _references(
        self, ts: np.ndarray, vs: np.ndarray, out: np.ndarray
    ) -> tuple[int, np.ndarray | None]:
        """Changes from one season back (see :meth:`_seasonal_changes`); updates the table.

        A point's reference is the last value of its slot one season (``slots``
        slot numbers) before it: from an earlier point of the batch, or from
        the table, which holds each slot's last value of the latest season.
        Only the first point of a slot in a season has one.
        """
        table = self._slot_value
        slots = table.shape[0]
        if math.isnan(self._anchor):
            self._anchor = float(ts[0])
        g = self._slot_numbers(ts)
        n = g.shape[0]
        g0, g_end, last = float(g[0]), float(g[-1]), self._last_slot
        points: np.ndarray | None = None
        if g_end - g0 == n - 1 and (n == 1 or bool(np.not_equal(g[1:], g[:-1]).all())):
            # one slot further at each point: the table for the first `slots`, the batch after
            m = min(n, slots)
            s0 = int(g0 % slots)
            head = out[:m]
            if s0 + m <= slots:
                np.subtract(vs[:m], table[s0 : s0 + m], out=head)
            else:
                np.subtract(vs[:m], np.concatenate((table[s0:], table[: s0 + m - slots])), out=head)
            np.subtract(vs[m:], vs[: n - m], out=out[m:n])
            lag = g0 - last  # slots since the table's latest point (NaN: none yet)
            count = n
            if not (1.0 <= lag and lag + m - 1 <= slots and math.isfinite(float(head.sum()))):
                lags = lag + np.arange(m)
                ok = (lags >= 1.0) & (lags <= slots) & ~np.isnan(head)
                points = np.concatenate((np.flatnonzero(ok), np.arange(m, n)))
                count = points.shape[0]
                out[:count] = out[points]
            if lag != 1.0:  # (right after the table's latest point, the batch overwrites them)
                _fill_wrapped(table, (last + 1.0) % slots, g_end - last, math.nan)
            _put_wrapped(table, int((g_end - m + 1.0) % slots), vs[n - m :])
        else:
            # several points in a slot, or slots skipped: each point's slot one season back
            first = np.empty(n, dtype=bool)  # first point of its slot in the batch
            first[0] = True
            np.not_equal(g[1:], g[:-1], out=first[1:])
            ends = np.empty(n, dtype=bool)  # last point of its slot in the batch
            ends[-1] = True
            ends[:-1] = first[1:]
            ends = np.flatnonzero(ends)
            rel = g - g0  # slot numbers from the batch's first
            back = rel - slots
            in_batch = back >= 0.0
            span = int(g_end - g0)
            if span <= 8 * n + 2 * slots:
                where = np.full(span + 1, -1, dtype=np.intp)  # last point of each slot number
                where[rel[ends].astype(np.intp)] = ends
                j = where[np.maximum(back, 0.0).astype(np.intp)]
                found = in_batch & (j >= 0)
            else:
                j = np.searchsorted(g, g - slots, side="right") - 1
                found = in_batch & (g[j] == g - slots)
            slot = _slot_index(g, slots)
            lag = g - last
            from_table = (lag >= 1.0) & (lag <= slots) & ~in_batch
            diff = vs - np.where(in_batch, vs[j], table[slot])
            ok = first & (found | from_table) & ~np.isnan(diff)
            points = np.flatnonzero(ok)
            count = points.shape[0]
            out[:count] = diff[points]
            _fill_wrapped(table, (last + 1.0) % slots, g_end - last, math.nan)
            keep = ends[g[ends] > g_end - slots]
            table[slot[keep]] = vs[keep]
        self._last_slot = g_end
        if count == n:
            points = None
        return count, points

    def _peek(self, ts: np.ndarray, vs: np.ndarray) -> Scores:
        """Score each point alone against the current model, learning nothing."""
        p = self.params
        n = vs.shape[0]
        warm = np.full(n, self._count >= p.warmup)
        noise = np.full(n, self._noise)
        lo, hi = np.full(n, self._level_lo), np.full(n, self._level_hi)
        unit = _unit(noise, lo, hi)
        level_x = _excess(vs, lo, hi) / unit
        w = p.mean_window
        tail = self._tail
        if tail.shape[0]:
            # the arithmetic of _rolling_means for one more point
            ref = tail[0]
            inner = tail[max(0, tail.shape[0] - (w - 1)) :] - ref
            total = np.cumsum(inner)[-1] if inner.shape[0] else 0.0
            if tail.shape[0] >= w and w <= _CONVOLVE_MAX:
                means = (total + (vs - ref)) / w + ref
                expected_value = float(np.sum(tail - ref) / w + ref)
            else:
                means = (total + (vs - ref)) / (inner.shape[0] + 1) + ref
                expected_value = float(np.cumsum(tail - ref)[-1] / tail.shape[0] + ref)
        else:
            means = vs.copy()
            expected_value = math.nan
        expected = np.full(n, expected_value)
        top = np.maximum(self._blocks.max(axis=1), self._block)
        mlo, mhi = np.full(n, -top[1]), np.full(n, top[0])
        mean_x = _excess(means, mlo, mhi) / _unit(noise, mlo, mhi)
        rlo, rhi = np.full(n, -top[3]), np.full(n, top[2])
        recent_x = _excess(vs, rlo, rhi) / _unit(noise, rlo, rhi)
        seasonal_x = np.zeros(n)
        slots = self._slot_value.shape[0]
        if slots and self._resid_count >= p.warmup:
            slot_number = self._slot_numbers(ts)
            lag = slot_number - self._last_slot
            ref = self._slot_value[_slot_index(slot_number, slots)]
            resid = vs - ref
            defined = (lag >= 1.0) & (lag <= slots) & ~np.isnan(resid)
            rlo, rhi = np.full(n, self._resid_lo), np.full(n, self._resid_hi)
            rx = _excess(resid, rlo, rhi) / _unit(np.full(n, self._resid_noise), rlo, rhi)
            gate = _seasonal_gate(rhi - rlo, hi - lo)
            seasonal_x = np.where(defined, rx * gate, 0.0)
            seasonal_x[~np.isfinite(seasonal_x)] = 0.0
        raw, code = _strongest(
            level_x,
            p.mean_weight * mean_x,
            p.seasonal_weight * seasonal_x,
            p.recent_weight * recent_x,
        )
        raw = np.where(warm & np.isfinite(raw), raw, 0.0)
        if p.refractory:
            prior = float(self._alert_excess.max(initial=0.0))
            raw = np.maximum(raw - p.refractory_factor * prior, 0.0)
        return _result(raw, code, expected, lo, hi, unit, warm)

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
        excess = -math.log1p(-min(point.score, 1.0 - 1e-16)) / _SCORE_RATE
        what = {
            _LEVEL: f"value {fmt(value)} breaks the range of its history "
            f"({fmt(point.lower)}–{fmt(point.upper)})",
            _MEAN: f"the mean of the latest {self.params.mean_window} points left the range "
            f"it kept over the latest {self.params.recent} points (previous mean "
            f"{fmt(point.expected)})",
            _SEASONAL: "the change from the same time one season ago is larger than any "
            "seen recently",
            _RECENT: f"value {fmt(value)} is outside the range of the latest "
            f"{self.params.recent} points",
        }[code]
        return (
            f"auto ({CHANNELS[code]}): {what}, by {excess:.2g} noise units; "
            f"score {point.score:.3f}."
        )


# -- kernels ------------------------------------------------------------------
# Work arrays reused from batch to batch: large fresh temporaries cost page faults
# on every batch. One set per process, taken by one batch at a time (a batch that
# finds it taken, in another thread, works with fresh arrays): by name, the array
# of the latest shape.
_SHARED_SCRATCH: dict[str, tuple[tuple[int, ...], np.ndarray]] = {}
_SCRATCH_LOCK = threading.Lock()


class _ActiveScratch(threading.local):
    arrays: dict[str, tuple[tuple[int, ...], np.ndarray]] | None = None


_ACTIVE = _ActiveScratch()
#: Largest work array kept for reuse (elements); larger ones are allocated each time.
_SCRATCH_MAX = 1 << 16


def _scratch(name: str, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """An uninitialised work array (never returned to a caller, never kept in the state)."""
    arrays = _ACTIVE.arrays
    if arrays is None:
        return np.empty(shape, dtype=dtype)
    entry = arrays.get(name)
    if entry is not None and entry[0] == shape:
        return entry[1]
    array = np.empty(shape, dtype=dtype)
    if array.size <= _SCRATCH_MAX:
        arrays[name] = (shape, array)
    return array


_NO_POINTS = np.empty(0, dtype=np.intp)
_NO_POINTS.setflags(write=False)
_NO_VALUES = np.empty(0)
_NO_VALUES.setflags(write=False)


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


_CODES = np.array([_LEVEL, _MEAN, _SEASONAL, _RECENT], dtype=np.float64)
_CODES_NO_SEASON = np.array([_LEVEL, _MEAN, _RECENT], dtype=np.float64)


def _ones(window: int) -> np.ndarray:
    ones = _ONES.get(window)
    if ones is None:
        ones = _ONES.setdefault(window, np.ones(window))
    return ones


def _strongest(
    level: np.ndarray, mean: np.ndarray, seasonal: np.ndarray, recent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Largest weighted channel excess and the code of the channel giving it.

    Ties go to the level, then the mean, then the seasonal channel.
    """
    raw = np.maximum(np.maximum(level, mean), np.maximum(seasonal, recent))
    code = np.full(raw.shape[0], float(_RECENT))
    for c, x in ((_SEASONAL, seasonal), (_MEAN, mean), (_LEVEL, level)):
        code[x >= raw] = c
    return raw, code


def _result(
    excess: np.ndarray,
    chan: np.ndarray,
    expected: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    unit: np.ndarray,
    warm: np.ndarray,
) -> Scores:
    score = -np.expm1(-_SCORE_RATE * excess)
    margin = EXCESS_AT_ALERT * unit
    if not warm.all():
        cold = ~warm
        score = np.where(cold, 0.0, score)
        expected = np.where(cold, np.nan, expected)
        lo = np.where(cold, np.nan, lo)
        hi = np.where(cold, np.nan, hi)
    return Scores(
        score=score,
        expected=expected,
        lower=lo - margin,
        upper=hi + margin,
        detail=np.where(excess > 0.0, chan, 0.0),
    )


def _ew_span(memory: int) -> int:
    """Points of one closed-form EWMA block (at most ``_BLOCK_LOG_SPAN`` e-folds)."""
    return max(1, int(_BLOCK_LOG_SPAN / -math.log1p(-1.0 / memory)))


_EW_VECTORS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _ew_vectors(memory: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``gain[t] = alpha * beta**-(t+1)`` and ``decay[t] = beta**t`` (at least ``n``, ``n + 1``).

    With them ``y[t] = (1 - alpha) y[t-1] + alpha x[t]`` is one cumulative sum:
    ``y[t] = (y0 + sum_{j<=t} gain[j] x[j]) * decay[t + 1]``.
    """
    cached = _EW_VECTORS.get(memory)
    if cached is not None and cached[0].shape[0] >= n:
        return cached
    size = min(_ew_span(memory), max(n, 4096))
    beta = 1.0 - 1.0 / memory
    steps = np.arange(size + 1, dtype=np.float64)
    decay = np.power(beta, steps)
    gain = (1.0 / memory) * np.power(beta, -steps[1:])
    gain.setflags(write=False)
    decay.setflags(write=False)
    _EW_VECTORS[memory] = (gain, decay)
    return gain, decay


def _ramp_vectors(
    count0: int, first: bool, memory: int, gain: np.ndarray, gains: np.ndarray, decays: np.ndarray
) -> None:
    """Gains and decays (see ``_noise_units``) of a row still in its running-mean phase.

    Sample ``k`` (``k = count0 + 1 + t`` at position ``t``; ``k = t`` for the
    very first points, whose position 0 is no sample) has weight ``1 / k``
    up to ``memory``, then ``1 / memory``. With ``Q(k) = k`` up to ``memory``
    and ``memory * beta**-(k - memory)`` after, ``y_k Q(k)`` is the running
    sum of ``q(k) x_k`` (``q = 1``, then ``Q / memory``), relative to
    ``Q(count0)``. ``gain`` is the steady ``alpha * beta**-(t+1)`` vector,
    ``decay`` below its reciprocal up to ``alpha``.
    """
    n = gains.shape[0]
    k0 = 0 if first else count0 + 1
    ramp = min(n, max(0, memory - k0 + 1))  # positions with k <= memory
    scale = float(max(count0, 1))
    gains[:ramp] = 1.0 / scale
    decays[0] = 1.0
    np.divide(scale, np.arange(k0, k0 + ramp, dtype=np.float64), out=decays[1 : ramp + 1])
    if ramp < n:
        # k = memory + j + 1: Q = memory * beta**-(j+1) = memory**2 * gain[j]
        np.multiply(gain[: n - ramp], memory / scale, out=gains[ramp:])
        _, decay = _ew_vectors(memory, n - ramp)
        np.multiply(decay[1 : n - ramp + 1], scale / memory, out=decays[ramp + 1 :])
    if first:
        gains[0] = 0.0
        decays[1] = scale


def _ew_mean_before(
    x: np.ndarray, mean0: float, count0: int, memory: int, *, first_ever: bool
) -> tuple[np.ndarray, float, int]:
    """EW mean of the samples before each point (a running mean at first).

    The k-th sample is weighted ``max(1 / memory, 1 / k)``: the plain running
    mean of the first ``memory`` samples (a cumulative sum), an EWMA after
    (closed-form blocks, the arithmetic of the two-row kernel of ``_learn``).
    With ``first_ever``, ``x[0]`` is not a sample (the very first point has no
    change before it). Returns the mean before each point, the mean after the
    batch and the new sample count.
    """
    n = x.shape[0]
    after = np.empty(n)
    start = 0
    count = count0
    mean = mean0
    if first_ever:
        after[0] = mean0
        start = 1
    if count < memory - 1 and start < n:
        # running mean of the first samples: mean_k = sum / k (k = memory is also the EWMA)
        stop = min(n, start + memory - 1 - count)
        counts = np.arange(count + 1, count + 1 + stop - start, dtype=np.float64)
        after[start:stop] = (mean * count + np.cumsum(x[start:stop])) / counts
        count += stop - start
        mean = float(after[stop - 1])
        start = stop
    span = _ew_span(memory)
    while start < n:
        length = min(n - start, span)
        gain, decay = _ew_vectors(memory, length)
        acc = np.empty(length + 1)
        acc[0] = mean
        np.multiply(x[start : start + length], gain[:length], out=acc[1:])
        np.cumsum(acc, out=acc)
        np.multiply(acc[1:], decay[1 : length + 1], out=after[start : start + length])
        mean = float(after[start + length - 1])
        count += length
        start += length
    before = np.empty(n)
    before[0] = mean0
    before[1:] = after[:-1]
    return before, mean, count


def _excess(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How far ``y`` lies outside ``[lo, hi]`` (0 inside, and 0 with no range yet)."""
    out = np.maximum(np.maximum(y - hi, lo - y), 0.0)
    out[~np.isfinite(out)] = 0.0
    return out


def _unit(noise: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Noise unit usable as a denominator (a flat history still has a tiny one)."""
    size = np.maximum(np.abs(lo), np.abs(hi))
    size[~np.isfinite(size)] = 1.0
    return np.maximum(noise, _RELATIVE_FLOOR * np.maximum(size, 1.0))


def _seasonal_gate(resid_width: np.ndarray, value_width: np.ndarray) -> np.ndarray:
    """Weight of the seasonal channel from how much narrower its range is."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = resid_width / value_width
    gate = (1.0 - ratio) / (1.0 - _SEASONAL_FULL_RATIO)
    gate = np.clip(gate, 0.0, 1.0)
    gate[~np.isfinite(gate)] = 0.0
    return gate


_ONES: dict[int, np.ndarray] = {}


def _rolling_means(seq: np.ndarray, start: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the latest ``window`` values ending at each of ``seq[start:]``, and before it.

    ``seq`` is the kept tail followed by the batch; near the start of a series
    the windows are shorter (the one before the very first value is empty:
    NaN). Sums are taken relative to the first value so that large numbers
    keep their precision: full windows by a direct convolution (prefix sums
    for long windows), the short ones by prefix sums.
    """
    ref = seq[0]
    total = seq.shape[0]
    n = total - start
    rel = np.subtract(seq, ref, out=_scratch("means", (total,)))
    out = np.empty(n + 1)  # windows ending before seq[start], ..., after seq[-1]
    full = max(start, window)  # first end of a full window
    if total >= full:
        if window <= _CONVOLVE_MAX:
            sums = np.convolve(rel[full - window :], _ones(window), "valid")
        else:
            cs = np.cumsum(rel[full - window :])
            sums = np.empty(total - full + 1)
            sums[0] = cs[window - 1]
            np.subtract(cs[window:], cs[: total - full], out=sums[1:])
        np.divide(sums, window, out=out[full - start :])
    short = min(full, total + 1) - start  # windows ending at start .. full - 1
    if short > 0:
        ends = np.arange(start, start + short, dtype=np.float64)
        cs = np.cumsum(rel[: start + short - 1]) if start + short > 1 else rel[:0]
        head = out[:short]
        if start == 0:
            head[0] = np.nan
            head[1:] = cs / ends[1:]
        else:
            head[:] = cs[start - 1 :] / ends
    out += ref
    return out[1:], out[:-1]


_WINDOW_BOUNDS: dict[tuple[int, int, int], np.ndarray] = {}


def _window_max(h: np.ndarray, width: int) -> np.ndarray:
    """Maximum of each run of ``width`` consecutive columns of ``h`` (one ``reduceat``)."""
    rows, cols = h.shape
    count = cols - width + 1
    key = (rows, cols, width)
    bounds = _WINDOW_BOUNDS.get(key)
    if bounds is None:
        # [start, stop) of each window of each row of h padded by one column
        starts = (np.arange(rows)[:, None] * (cols + 1) + np.arange(count)[None, :]).reshape(-1)
        bounds = np.empty(2 * starts.shape[0], dtype=np.intp)
        bounds[0::2] = starts
        bounds[1::2] = starts + width
        bounds.setflags(write=False)
        _WINDOW_BOUNDS[key] = bounds
    padded = np.empty((rows, cols + 1))
    padded[:, :cols] = h
    padded[:, cols] = -np.inf
    return np.maximum.reduceat(padded.reshape(-1), bounds)[0::2].reshape(rows, count)


def _slot_index(g: np.ndarray, slots: int) -> np.ndarray:
    """Slot of each (integral) slot number: ``g mod slots``."""
    return (g - slots * np.floor(g / slots)).astype(np.intp)


def _put_wrapped(table: np.ndarray, start: int, values: np.ndarray) -> None:
    """Write ``values`` into a circular table from ``start`` (at most its length)."""
    size = table.shape[0]
    first = min(values.shape[0], size - start)
    table[start : start + first] = values[:first]
    table[: values.shape[0] - first] = values[first:]


def _fill_wrapped(table: np.ndarray, start: float, count: float, value: float) -> None:
    """Set ``count`` entries of a circular table from ``start`` (NaN start: nothing)."""
    if not count >= 1.0:  # also NaN
        return
    size = table.shape[0]
    if count >= size:
        table[:] = value
        return
    begin, stop = int(start), int(start) + int(count)
    table[begin : min(stop, size)] = value
    if stop > size:
        table[: stop - size] = value


def _to_json(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _from_json(x: float | None, default: float) -> float:
    return default if x is None else float(x)


def _list_to_json(a: np.ndarray) -> list[float | None]:
    out = a.tolist()
    if not np.isfinite(a).all():
        out = [v if math.isfinite(v) else None for v in out]
    return out


def _table_to_json(table: np.ndarray) -> tuple[list[float], list[int]]:
    """Slot values as plain floats (0 where empty) and the [start, stop) runs of empty slots."""
    empty = np.isnan(table)
    if not empty.any():
        return table.tolist(), []
    edges = np.flatnonzero(np.diff(empty, prepend=False, append=False))
    return np.where(empty, 0.0, table).tolist(), edges.tolist()


def _table_from_json(values: list[float], empty: list[int]) -> np.ndarray:
    table = np.array(values, dtype=np.float64).reshape(-1)
    for start, stop in zip(empty[0::2], empty[1::2], strict=True):
        table[start:stop] = math.nan
    return table


def _list_from_json(a: list[float | None], missing: float = math.nan) -> np.ndarray:
    return np.asarray([missing if v is None else v for v in a], dtype=np.float64)
