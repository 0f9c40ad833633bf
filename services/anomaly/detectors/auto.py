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

Everything is causal and vectorised (running maxima shifted by the cumulative
fade, block maxima for the recent ranges, a running mean then a closed-form
EWMA for the noise units, slot indexing or a stable sort of the batch's time
slots for the seasonal table):
``score`` on a batch gives the same numbers as ``score_one`` point by point.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ._common import fmt, learning_sentence
from .base import Detector, DetectorParams, PointScore, Scores

__all__ = ["CHANNELS", "EXCESS_AT_ALERT", "AutoDetector", "AutoParams"]

#: Excess (in noise units) at which the score reaches 0.99, the default alert level.
EXCESS_AT_ALERT = 0.5
_SCORE_RATE = -math.log(0.01) / EXCESS_AT_ALERT
#: A seasonal reference older than this many seasons is stale (the slot missed a season).
_STALE_SEASONS = 1.5
#: ... and one younger than this many seasons is from the same season (a shared slot).
_FRESH_SEASONS = 0.5
#: Intervals between the first points whose median sets the cadence (and the slot count).
_CADENCE_INTERVALS = 16
#: Most time slots per season (beyond, several points share a slot).
_MAX_SLOTS = 4096
#: The seasonal weight is full when the range of seasonal changes is at most this
#: share of the range of the values, and falls linearly to 0 when they are equal.
_SEASONAL_FULL_RATIO = 0.5
#: Blocks the recent range is kept in (its length varies by one block).
_RECENT_BLOCKS = 10
#: Smallest noise unit, relative to the magnitude of the range.
_RELATIVE_FLOOR = 1e-9
#: Longest accumulated decay (e-folds) of one closed-form EWMA block.
_BLOCK_LOG_SPAN = 30.0

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
        self._blocks = np.empty((_RECENT_ROWS, 0))
        self._block = np.full(_RECENT_ROWS, -math.inf)
        self._first_times = np.empty(0)
        self._slot_value = np.empty(0)
        self._slot_time = np.empty(0)
        self._resid_count = 0
        self._resid_last = math.nan
        self._resid_noise = 0.0
        self._resid_noise_count = 0
        self._resid_lo, self._resid_hi = math.inf, -math.inf
        self._recent_excess = np.empty(0)

    def get_state(self) -> dict[str, Any]:
        return {
            "count": self._count,
            "last_value": _to_json(self._last_value),
            "noise": [self._noise, self._noise_count],
            "level": [_to_json(self._level_lo), _to_json(self._level_hi)],
            "tail": _list_to_json(self._tail),
            "blocks": [_list_to_json(row) for row in self._blocks],
            "block": _list_to_json(self._block),
            "first_times": _list_to_json(self._first_times),
            "slots": [_list_to_json(self._slot_value), _list_to_json(self._slot_time)],
            "resid_count": self._resid_count,
            "resid_last": _to_json(self._resid_last),
            "resid_noise": [self._resid_noise, self._resid_noise_count],
            "resid": [_to_json(self._resid_lo), _to_json(self._resid_hi)],
            "recent_excess": _list_to_json(self._recent_excess),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._count = int(state["count"])
        self._last_value = _from_json(state["last_value"], math.nan)
        self._noise, self._noise_count = float(state["noise"][0]), int(state["noise"][1])
        self._level_lo = _from_json(state["level"][0], math.inf)
        self._level_hi = _from_json(state["level"][1], -math.inf)
        self._tail = _list_from_json(state["tail"])
        self._blocks = np.array(
            [_list_from_json(row, -math.inf) for row in state["blocks"]], dtype=np.float64
        ).reshape(_RECENT_ROWS, -1)
        self._block = _list_from_json(state["block"], -math.inf)
        self._first_times = _list_from_json(state["first_times"])
        self._slot_value = _list_from_json(state["slots"][0])
        self._slot_time = _list_from_json(state["slots"][1])
        self._resid_count = int(state["resid_count"])
        self._resid_last = _from_json(state["resid_last"], math.nan)
        self._resid_noise = float(state["resid_noise"][0])
        self._resid_noise_count = int(state["resid_noise"][1])
        self._resid_lo = _from_json(state["resid"][0], math.inf)
        self._resid_hi = _from_json(state["resid"][1], -math.inf)
        self._recent_excess = _list_from_json(state["recent_excess"])

    @property
    def n_seen(self) -> int:
        return self._count

    @property
    def warmup(self) -> int:
        return self.params.warmup

    # -- scoring ---------------------------------------------------------
    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        if values.shape[0] == 0:
            empty = np.empty(0)
            return Scores(empty, empty, empty, empty, empty)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            if learn:
                return self._learn(timestamps, values)
            return self._peek(timestamps, values)

    def _learn(self, ts: np.ndarray, vs: np.ndarray) -> Scores:
        p = self.params
        n = vs.shape[0]
        warm = np.arange(self._count, self._count + n) >= p.warmup

        # noise unit: EW mean |change| before each point
        prev = np.concatenate(([self._last_value], vs[:-1]))
        noise, self._noise, self._noise_count = _ew_mean_before(
            np.abs(vs - prev), self._noise, self._noise_count, p.memory, first_ever=self._count == 0
        )
        fade = noise / p.forget

        # level: the value against the fading range of all past values
        lo, hi, self._level_lo, self._level_hi = _fading_range(
            vs, fade, self._level_lo, self._level_hi
        )
        unit = _unit(noise, lo, hi)
        level_x = _excess(vs, lo, hi) / unit

        # mean: the latest mean_window points against the recent range of that mean
        seq = np.concatenate((self._tail, vs))
        means, expected = _rolling_means(seq, self._tail.shape[0], p.mean_window)
        self._tail = seq[-p.mean_window :]
        ranges = self._recent_range(np.stack((means, -means, vs, -vs)))
        mlo, mhi = -ranges[1], ranges[0]
        mean_x = _excess(means, mlo, mhi) / _unit(noise, mlo, mhi)
        rlo, rhi = -ranges[3], ranges[2]
        recent_x = _excess(vs, rlo, rhi) / _unit(noise, rlo, rhi)

        seasonal_x = np.zeros(n)
        if p.season_seconds > 0.0 and p.seasonal_weight > 0.0:
            start = self._learn_cadence(ts)
            if self._slot_value.shape[0] and start < n:
                seasonal_x[start:] = self._learn_seasonal(
                    ts[start:], vs[start:], hi[start:] - lo[start:]
                )

        final, chan = self._combine(level_x, mean_x, seasonal_x, recent_x, warm, learn=True)
        self._count += n
        self._last_value = float(vs[-1])
        return _result(final, chan, expected, lo, hi, unit, warm)

    def _recent_range(self, rows: np.ndarray) -> np.ndarray:
        """Maximum of each row over the completed recent blocks and the open one, before each point.

        The recent points are kept as the maxima of ``_RECENT_BLOCKS`` blocks
        of ``recent / 10`` points plus those of the open block; a minimum is
        kept as the maximum of the negated series.
        """
        size = max(1, self.params.recent // _RECENT_BLOCKS)
        offset = self._count % size
        k, n = rows.shape
        nrows = -(-(offset + n) // size)
        grid = np.full((k, nrows * size), -np.inf)
        grid[:, offset : offset + n] = rows
        if offset:
            grid[:, offset - 1] = self._block
        running = np.maximum.accumulate(grid.reshape(k, nrows, size), axis=2)
        flat = running.reshape(k, nrows * size)
        before = np.empty((k, n))
        if offset:
            before[:] = flat[:, offset - 1 : offset + n - 1]
        else:
            before[:, 0] = -np.inf
            before[:, 1:] = flat[:, : n - 1]
        before[:, (size - offset) % size :: size] = -np.inf  # first point of a block
        ends = running[:, :, -1]
        # maxima of the (at most _RECENT_BLOCKS) completed blocks before each block row
        history = np.concatenate(
            (np.full((k, _RECENT_BLOCKS), -np.inf), self._blocks, ends[:, : nrows - 1]), axis=1
        )
        kept = self._blocks.shape[1]
        windows = np.lib.stride_tricks.sliding_window_view(history, _RECENT_BLOCKS, axis=1)
        prev = windows[:, kept : kept + nrows].max(axis=2)
        counts = np.full(nrows, size)
        counts[0] = min(size - offset, n)
        if nrows > 1:
            counts[-1] = offset + n - (nrows - 1) * size
        out = np.maximum(before, np.repeat(prev, counts, axis=1))
        # keep the completed blocks and the running maxima of the open one
        complete = (offset + n) // size
        self._blocks = np.concatenate((self._blocks, ends[:, :complete]), axis=1)[
            :, -_RECENT_BLOCKS:
        ]
        self._block = ends[:, -1].copy() if (offset + n) % size else np.full(k, -np.inf)
        return out

    def _learn_cadence(self, ts: np.ndarray) -> int:
        """Learn the cadence from the first points; index of the first seasonal point.

        The median of the first ``_CADENCE_INTERVALS`` intervals sets the
        number of time slots per season (one per expected point, at most
        ``_MAX_SLOTS``). The points used for it are not entered in the table.
        """
        missing = _CADENCE_INTERVALS + 1 - self._first_times.shape[0]
        if missing <= 0 or self._slot_value.shape[0]:
            return 0
        self._first_times = np.concatenate((self._first_times, ts[:missing]))
        if self._first_times.shape[0] <= _CADENCE_INTERVALS:
            return ts.shape[0]
        gaps = sorted(np.diff(self._first_times).tolist())
        half = len(gaps) // 2
        cadence = gaps[half] if len(gaps) % 2 else 0.5 * (gaps[half - 1] + gaps[half])
        slots = min(_MAX_SLOTS, int(round(self.params.season_seconds / cadence)))
        if slots >= 4:
            self._slot_value = np.full(slots, math.nan)
            self._slot_time = np.full(slots, math.nan)
        return missing

    def _learn_seasonal(self, ts: np.ndarray, vs: np.ndarray, width: np.ndarray) -> np.ndarray:
        """Excess of the change from one season ago, gated by how seasonal the series is."""
        p = self.params
        n = vs.shape[0]
        slots = self._slot_value.shape[0]
        slot = _slot_of(ts, p.season_seconds, slots)
        ref_value, ref_time = self._seasonal_references(ts, vs, slot)
        age = ts - ref_time
        idx = np.flatnonzero(
            (age > _FRESH_SEASONS * p.season_seconds) & (age < _STALE_SEASONS * p.season_seconds)
        )
        out = np.zeros(n)
        if idx.size == 0:
            return out
        resid = vs[idx] - ref_value[idx]
        prev = np.concatenate(([self._resid_last], resid[:-1]))
        noise, self._resid_noise, self._resid_noise_count = _ew_mean_before(
            np.abs(resid - prev),
            self._resid_noise,
            self._resid_noise_count,
            p.memory,
            first_ever=self._resid_count == 0,
        )
        lo, hi, self._resid_lo, self._resid_hi = _fading_range(
            resid, noise / p.forget, self._resid_lo, self._resid_hi
        )
        x = _excess(resid, lo, hi) / _unit(noise, lo, hi)
        gate = _seasonal_gate(hi - lo, width[idx])
        ready = np.arange(self._resid_count, self._resid_count + idx.size) >= p.warmup
        out[idx] = np.where(ready, x * gate, 0.0)
        self._resid_count += int(idx.size)
        self._resid_last = float(resid[-1])
        return out

    def _seasonal_references(
        self, ts: np.ndarray, vs: np.ndarray, slot: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Value and time last seen in each point's slot (earlier batch point or table).

        Updates the table with the batch. A regular cadence (each point one
        slot after the previous) needs no sort: the point ``slots`` places
        back shares the slot.
        """
        n = vs.shape[0]
        slots = self._slot_value.shape[0]
        table_v, table_t = self._slot_value, self._slot_time
        step = np.diff(slot)
        if np.all((step == 1) | (step == 1 - slots)):
            m = min(n, slots)
            ref_value = np.empty(n)
            ref_time = np.empty(n)
            ref_value[:m] = table_v[slot[:m]]
            ref_time[:m] = table_t[slot[:m]]
            ref_value[m:] = vs[: n - m]
            ref_time[m:] = ts[: n - m]
            table_v[slot[n - m :]] = vs[n - m :]
            table_t[slot[n - m :]] = ts[n - m :]
            return ref_value, ref_time
        order = np.argsort(slot.astype(np.int16), kind="stable")
        sorted_slot = slot[order]
        same = np.empty(n, dtype=bool)
        same[0] = False
        np.equal(sorted_slot[1:], sorted_slot[:-1], out=same[1:])
        # reference: the previous point of the same slot in the batch, else the table
        before = np.empty(n, dtype=np.int64)
        before[0] = 0
        before[1:] = order[:-1]
        ref_value = np.empty(n)
        ref_time = np.empty(n)
        ref_value[order] = np.where(same, vs[before], table_v[sorted_slot])
        ref_time[order] = np.where(same, ts[before], table_t[sorted_slot])
        last = np.empty(n, dtype=bool)
        last[-1] = True
        np.logical_not(same[1:], out=last[:-1])
        table_v[sorted_slot[last]] = vs[order[last]]
        table_t[sorted_slot[last]] = ts[order[last]]
        return ref_value, ref_time

    def _combine(
        self,
        level_x: np.ndarray,
        mean_x: np.ndarray,
        seasonal_x: np.ndarray,
        recent_x: np.ndarray,
        warm: np.ndarray,
        *,
        learn: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Weighted largest channel excess, damped by the recent excesses."""
        p = self.params
        weighted = (
            level_x,
            p.mean_weight * mean_x,
            p.seasonal_weight * seasonal_x,
            p.recent_weight * recent_x,
        )
        raw = np.maximum(np.maximum(weighted[0], weighted[1]), np.maximum(weighted[2], weighted[3]))
        raw = np.where(warm & np.isfinite(raw), raw, 0.0)
        hot = np.flatnonzero(raw > 0.0)
        chan = np.zeros(raw.shape[0])
        if hot.size:
            top = raw[hot]
            code = np.full(hot.size, _RECENT, dtype=np.float64)
            for c, x in ((_SEASONAL, weighted[2]), (_MEAN, weighted[1]), (_LEVEL, weighted[0])):
                code = np.where(x[hot] >= top, c, code)
            chan[hot] = code
        k = p.refractory
        if k == 0:
            return raw, chan
        history = self._recent_excess
        if history.shape[0] < k:
            history = np.concatenate((np.zeros(k - history.shape[0]), history))
        if learn:
            # only alerts damp later points: a build-up below the alert level does not
            seq = np.concatenate((history, np.where(raw >= EXCESS_AT_ALERT, raw, 0.0)))
            self._recent_excess = seq[-k:]
            if hot.size * k <= 4 * raw.shape[0]:
                # records are rare: look back only from the points that have an excess
                prior = np.zeros(raw.shape[0])
                if hot.size:
                    prior[hot] = seq[hot[:, None] + np.arange(k)].max(axis=1)
            else:
                prior = _max_of_previous(seq, k)
        else:
            prior = np.full(raw.shape[0], history.max())
        return np.maximum(raw - p.refractory_factor * prior, 0.0), chan

    def _peek(self, ts: np.ndarray, vs: np.ndarray) -> Scores:
        """Score each point alone against the current model, learning nothing."""
        p = self.params
        n = vs.shape[0]
        warm = np.full(n, self._count >= p.warmup)
        noise = np.full(n, self._noise)
        lo, hi = np.full(n, self._level_lo), np.full(n, self._level_hi)
        unit = _unit(noise, lo, hi)
        level_x = _excess(vs, lo, hi) / unit
        tail = self._tail[self._tail.shape[0] - min(self._tail.shape[0], p.mean_window - 1) :]
        means = (tail.sum() + vs) / (tail.shape[0] + 1)
        expected = np.full(n, self._tail.mean() if self._tail.shape[0] else math.nan)
        top = np.maximum(self._blocks.max(axis=1, initial=-math.inf), self._block)
        mlo, mhi = np.full(n, -top[1]), np.full(n, top[0])
        mean_x = _excess(means, mlo, mhi) / _unit(noise, mlo, mhi)
        rlo, rhi = np.full(n, -top[3]), np.full(n, top[2])
        recent_x = _excess(vs, rlo, rhi) / _unit(noise, rlo, rhi)
        seasonal_x = np.zeros(n)
        if self._slot_value.shape[0] and self._resid_count >= p.warmup:
            slot = _slot_of(ts, p.season_seconds, self._slot_value.shape[0])
            age = ts - self._slot_time[slot]
            defined = (age > _FRESH_SEASONS * p.season_seconds) & (
                age < _STALE_SEASONS * p.season_seconds
            )
            resid = vs - self._slot_value[slot]
            rlo, rhi = np.full(n, self._resid_lo), np.full(n, self._resid_hi)
            rx = _excess(resid, rlo, rhi) / _unit(np.full(n, self._resid_noise), rlo, rhi)
            gate = _seasonal_gate(rhi - rlo, hi - lo)
            seasonal_x = np.where(defined, rx * gate, 0.0)
        final, chan = self._combine(level_x, mean_x, seasonal_x, recent_x, warm, learn=False)
        return _result(final, chan, expected, lo, hi, unit, warm)

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


def _ew_mean_before(
    x: np.ndarray, mean0: float, count0: int, memory: int, *, first_ever: bool
) -> tuple[np.ndarray, float, int]:
    """EW mean of the samples before each point (a running mean at first).

    The k-th sample is weighted ``max(1 / memory, 1 / k)``: the plain running
    mean of the first ``memory`` samples (a cumulative sum), an EWMA after.
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
    if count < memory and start < n:
        # running mean while fewer than `memory` samples: mean_k = sum / k
        stop = min(n, start + memory - count)
        counts = np.arange(count + 1, count + 1 + stop - start, dtype=np.float64)
        after[start:stop] = (mean * count + np.cumsum(x[start:stop])) / counts
        count += stop - start
        mean = float(after[stop - 1])
        start = stop
    if start < n:
        after[start:] = _ewma_constant(x[start:], 1.0 / memory, mean)
        count += n - start
    before = np.empty(n)
    before[0] = mean0
    before[1:] = after[:-1]
    return before, float(after[-1]), count


_GROWTH: dict[float, np.ndarray] = {}


def _ewma_constant(x: np.ndarray, alpha: float, y0: float) -> np.ndarray:
    """``y[t] = (1 - alpha) y[t-1] + alpha x[t]``, by closed-form blocks."""
    n = x.shape[0]
    beta = 1.0 - alpha
    span = max(1, int(_BLOCK_LOG_SPAN / -math.log(beta)))
    out = np.empty(n)
    growth = _GROWTH.get(alpha)
    if growth is None or growth.shape[0] < min(n, span):
        growth = np.power(beta, -np.arange(1, min(max(n, 4096), span) + 1, dtype=np.float64))
        _GROWTH[alpha] = growth
    y = y0
    for start in range(0, n, span):
        stop = min(n, start + span)
        g = growth[: stop - start]
        block = (y + np.cumsum(alpha * x[start:stop] * g)) / g
        out[start:stop] = block
        y = float(block[-1])
    return out


def _fading_range(
    y: np.ndarray, fade: np.ndarray, lo0: float, hi0: float
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Fading range ``hi[t] = max(y[t], hi[t-1] - fade[t])`` (``lo`` mirrored).

    With ``S`` the cumulative fade, ``hi[t] = max(hi0, max_{j<=t} y[j] + S[j]) - S[t]``:
    one running maximum. Returns the range before each point and after the batch.
    """
    n = y.shape[0]
    shift = np.empty(n + 1)
    shift[0] = 0.0
    np.cumsum(fade, out=shift[1:])
    buf = np.empty(n + 1)
    buf[0] = hi0
    np.add(y, shift[1:], out=buf[1:])
    top = np.maximum.accumulate(buf)
    buf[0] = -lo0
    np.subtract(shift[1:], y, out=buf[1:])
    bottom = np.maximum.accumulate(buf)
    # before point t: the running extreme over j < t, faded by S[t-1]
    hi = top[:n] - shift[:n]
    lo = shift[:n] - bottom[:n]
    return lo, hi, float(shift[n] - bottom[n]), float(top[n] - shift[n])


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


def _rolling_means(seq: np.ndarray, start: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the latest ``window`` values ending at each of ``seq[start:]``, and before it.

    ``seq`` is the kept tail followed by the batch; near the start of a series
    the windows are shorter. Sums are taken relative to the first value so
    that long batches of large numbers keep their precision.
    """
    ref = seq[0]
    total = seq.shape[0]
    n = total - start
    cs = np.empty(total + 1)
    cs[0] = 0.0
    np.cumsum(seq - ref, out=cs[1:])
    means = _window_means(cs, start + 1, n, window) + ref
    expected = _window_means(cs, start, n, window) + ref
    return means, expected


def _window_means(cs: np.ndarray, first_end: int, n: int, window: int) -> np.ndarray:
    """Means of the windows ending at ``first_end .. first_end + n - 1`` (``cs`` = prefix sums).

    A window ending at ``end`` covers ``max(0, end - window) .. end - 1``;
    one that ends at 0 is empty (NaN).
    """
    whole = min(n, max(0, window - first_end))  # leading windows cut by the series start
    sums = np.empty(n)
    counts = np.empty(n)
    if whole:
        ends = np.arange(first_end, first_end + whole)
        sums[:whole] = cs[ends]
        counts[:whole] = ends
    sums[whole:] = (
        cs[first_end + whole : first_end + n]
        - cs[first_end + whole - window : first_end + n - window]
    )
    counts[whole:] = window
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sums / counts
    out[counts == 0] = np.nan
    return out


def _max_of_previous(seq: np.ndarray, k: int) -> np.ndarray:
    """For each of the last ``len(seq) - k`` entries, the max of the ``k`` entries before it.

    Van Herk / Gil-Werman: block prefix and suffix maxima, two passes.
    """
    m = seq.shape[0] - k
    body = seq[:-1]
    blocks = -(-body.shape[0] // k)
    pad = np.full(blocks * k, -np.inf)
    pad[: body.shape[0]] = body
    table = pad.reshape(blocks, k)
    prefix = np.maximum.accumulate(table, axis=1).reshape(-1)
    suffix = np.maximum.accumulate(table[:, ::-1], axis=1)[:, ::-1].reshape(-1)
    # window [i, i + k - 1] of body: suffix max from i, prefix max up to i + k - 1
    i = np.arange(m)
    return np.maximum(suffix[i], prefix[i + k - 1])


def _slot_of(ts: np.ndarray, season: float, slots: int) -> np.ndarray:
    """Time slot of each time stamp within its season (0 .. slots - 1)."""
    phase = ts / season
    phase -= np.floor(phase)
    phase *= slots
    return np.minimum(phase.astype(np.int64), slots - 1)


def _to_json(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _from_json(x: float | None, default: float) -> float:
    return default if x is None else float(x)


def _list_to_json(a: np.ndarray) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in a.astype(np.float64).tolist()]


def _list_from_json(a: list[float | None], missing: float = math.nan) -> np.ndarray:
    return np.asarray([missing if v is None else v for v in a], dtype=np.float64)
