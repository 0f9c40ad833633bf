"""The compiled loop of ``auto``: every channel, the ensemble and the learning, point by point.

One loop serves batches and single points alike (so the two give the same
numbers by construction). It reads the parameters from a float array (see
:func:`pack`) and the state from the arrays of :mod:`.layout`, writes per
point the score, channel, expected value, band and learning flag, and
updates the state in place unless ``learn`` is false (then every point is
scored as if it were the next one). Compiled by numba on first use and
cached on disk.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import (
    _cache,  # noqa: F401 (stamps the compiled functions with the package hash)
    calibration,
    seasons,
    window,
)
from .layout import S
from .params import (
    ALERT_EXCESS,
    CADENCE_INTERVALS,
    CALIBRATION_PRIOR,
    CALIBRATION_PRIOR_POINTS,
    CALIBRATION_REFRESH,
    LOCAL,
    LOCAL_MAX_POINTS,
    LOCAL_MIN_POINTS,
    MAX_ALERTS,
    MAX_SLOTS,
    MEAN,
    MIN_POINTS,
    RECENT,
    RECENT_BLOCKS,
    RELATIVE_FLOOR,
    SEASONAL,
    SHORT_MAX_POINTS,
    SHORT_MIN_POINTS,
    WEEK_MAX_SLOTS,
    AutoParams,
)
from .seasons import DAY, WEEK

#: The parameters in the order of the kernel's array.
PARAM_ORDER = (
    "warmup_seconds",
    "memory_seconds",
    "forget_seconds",
    "mean_window",
    "recent_seconds",
    "local_seconds",
    "short_seconds",
    "season_seconds",
    "refractory_seconds",
    "refractory_factor",
    "mean_weight",
    "recent_weight",
    "seasonal_weight",
    "local_weight",
    "calibration_quantile",
    "calibration_seconds",
    "level_weight",
    "recent_max_points",
    "resolution_floor",
    "record_rate",
    "seasonal_echo",
    "level_gate",
    "settle_seconds",
    "level_gate_seasonal",
    "week_seconds",
)
#: Gaussian ratio of the interquartile range to the standard deviation.
_IQR_SIGMA = 1.349
#: The local scale never falls below this share of its slow average (flat stretches).
_LONG_SCALE_FLOOR = 0.25
#: The seasonal weight is full when the range of seasonal changes is at most this
#: share of the range of the values, and 0 when they are equal.
_SEASONAL_FULL_RATIO = 0.5

(_COUNT, _T_FIRST, _T_LAST, _X_LAST, _STEP, _INTERVALS, _NOISE, _NOISE_N, _LO, _HI) = (
    S[k]
    for k in (
        "count", "t_first", "t_last", "x_last", "step", "intervals", "noise", "noise_n",
        "lo", "hi",
    )
)  # fmt: skip
(_RING_POS, _RING_FILL, _WINDOW, _HIST_TOTAL, _HIST_WEIGHT, _TYPICAL, _LONG_SCALE) = (
    S[k]
    for k in (
        "ring_pos", "ring_fill", "window", "hist_total", "hist_weight", "typical", "long_scale",
    )
)  # fmt: skip
(_TAIL_N, _TAIL_POS, _TAIL_SUM, _BLOCK_SIZE, _BLOCK_FILL, _BLOCK_COUNT) = (
    S[k] for k in ("tail_n", "tail_pos", "tail_sum", "block_size", "block_fill", "block_count")
)
(_SLOTS, _SEASON_T0, _RESID_COUNT, _RESID_NOISE, _ALERT_POS) = (
    S[k] for k in ("slots", "season_t0", "resid_count", "resid_noise", "alert_pos")
)
(_SHORT_POS, _SHORT_FILL, _SHORT_WIDTH) = (S[k] for k in ("short_pos", "short_fill", "short_width"))
(_QUANTUM, _RECORD_RATE) = (S["quantum"], S["record_rate"])
_CUR = RECENT_BLOCKS  # column of the current block
_DONE = RECENT_BLOCKS + 1  # column of the maxima of the completed blocks


def pack(params: AutoParams) -> np.ndarray:
    """The parameters as the kernel's float array."""
    return np.array([float(getattr(params, name)) for name in PARAM_ORDER])


@njit(cache=True, nogil=True)
def _outside(y: float, lo: float, hi: float) -> float:
    return max(y - hi, lo - y, 0.0)


@njit(cache=True, nogil=True)
def _unit(noise: float, lo: float, hi: float) -> float:
    return max(noise, RELATIVE_FLOOR * max(abs(lo), abs(hi), 1.0))


@njit(cache=True, nogil=True)
def _gate_evidence(
    local: float, resid: float, week_resid: float, s: np.ndarray, width: float
) -> float:
    """How far the level gate opens (1: in full): the local evidence, or the changes from
    yesterday and from last week against the ranges of such changes (the smaller of the
    two), whichever is larger."""
    if width <= 0.0 or not seasons.known(s, DAY, resid, MIN_POINTS):
        return local
    far = seasons.spread(s, DAY, resid, width)
    if math.isnan(far):
        return local
    if seasons.known(s, WEEK, week_resid, MIN_POINTS):
        far_week = seasons.spread(s, WEEK, week_resid, width)
        if not math.isnan(far_week):
            far = min(far, far_week)
    return max(local, far)


@njit(cache=True, nogil=True)
def _set_cadence(P: np.ndarray, s: np.ndarray, iv: np.ndarray, t: float) -> None:
    """Lengths in points from the cadence, once the first intervals are known."""
    step = np.median(iv)
    s[_STEP] = step
    s[_WINDOW] = min(max(round(P[5] / step), LOCAL_MIN_POINTS), LOCAL_MAX_POINTS)
    s[_SHORT_WIDTH] = min(max(round(P[6] / step), SHORT_MIN_POINTS), SHORT_MAX_POINTS)
    recent_points = min(P[4] / step, P[17])
    s[_BLOCK_SIZE] = max(1.0, round(recent_points / RECENT_BLOCKS))
    seasons.set_season(s, DAY, P[7], step, MAX_SLOTS)
    seasons.set_season(s, WEEK, P[24], step, WEEK_MAX_SLOTS)
    s[_SEASON_T0] = t


@njit(cache=True, nogil=True)
def kernel(  # noqa: PLR0912, PLR0913, PLR0915 (one loop keeps batch and point equal)
    ts: np.ndarray,
    vs: np.ndarray,
    learn: bool,
    P: np.ndarray,
    s: np.ndarray,
    iv: np.ndarray,
    ring: np.ndarray,
    srt: np.ndarray,
    tail: np.ndarray,
    short_ring: np.ndarray,
    short_srt: np.ndarray,
    blk: np.ndarray,
    hist: np.ndarray,
    slot_v: np.ndarray,
    slot_k: np.ndarray,
    week_v: np.ndarray,
    week_k: np.ndarray,
    al_t: np.ndarray,
    al_e: np.ndarray,
    out: np.ndarray,
) -> None:
    """Score ``vs`` at ``ts``; ``out`` rows: excess (after the refractory damping),
    channel, expected, lower, upper, learning."""
    warmup_s, memory_s, forget_s = P[0], P[1], P[2]
    mw = int(P[3])
    season_s, refr_s, refr_f = P[7], P[8], P[9]
    mean_w, recent_w, season_w, local_w = P[10], P[11], P[12], P[13]
    cal_q, cal_s, level_w = P[14], P[15], P[16]
    resolution_floor, record_rate, echo, level_gate = P[18], P[19], P[20], P[21]
    settle_s = P[22]
    gate_seasonal = P[23]
    for i in range(vs.shape[0]):
        t = ts[i]
        x = vs[i]
        count = s[_COUNT]
        step = s[_STEP]
        elapsed = t - s[_T_FIRST] if count > 0 else 0.0
        warm = count >= MIN_POINTS and step > 0.0 and elapsed >= warmup_s
        learning = not warm or elapsed < max(warmup_s, season_s)
        dt = t - s[_T_LAST] if count > 0 else 0.0
        noise = s[_NOISE]
        # the level channel's range, faded by one noise unit per forget_s
        fade = noise * dt / forget_s if count > 0 else 0.0
        lo = s[_LO] + fade
        hi = s[_HI] - fade
        unit = _unit(noise, lo, hi)
        # the mean of the tail before this point, and with it
        ntail = int(s[_TAIL_N])
        oldest = tail[int(s[_TAIL_POS])] if ntail >= mw else 0.0
        mean_prev = s[_TAIL_SUM] / ntail if ntail > 0 else x
        if ntail >= mw:
            mean_now = (s[_TAIL_SUM] - oldest + x) / mw
        else:
            mean_now = (s[_TAIL_SUM] + x) / (ntail + 1)
        raw = 0.0
        chan = 0
        expected = math.nan
        lower = math.nan
        upper = math.nan
        z = -1.0
        iqr = 0.0
        # the changes from the same slot one day and one week ago, if seen then
        resid, k_index, slot = seasons.change(s, DAY, slot_v, slot_k, t, x)
        week_resid, week_index, week_slot = seasons.change(s, WEEK, week_v, week_k, t, x)
        if warm:
            raw = level_w * _outside(x, lo, hi) / unit
            if record_rate > 0.0 and s[_RECORD_RATE] > record_rate:
                raw *= record_rate / s[_RECORD_RATE]  # records are common here (a trend)
            chan = 1
            # the mean and the value against their ranges over the recent blocks
            mhi = max(blk[0, _CUR], blk[0, _DONE])
            if math.isfinite(mhi):
                mlo = -max(blk[1, _CUR], blk[1, _DONE])
                e = mean_w * _outside(mean_now, mlo, mhi) / _unit(noise, mlo, mhi)
                if e > raw:
                    raw, chan = e, MEAN
                rhi = max(blk[2, _CUR], blk[2, _DONE])
                rlo = -max(blk[3, _CUR], blk[3, _DONE])
                e = recent_w * _outside(x, rlo, rhi) / _unit(noise, rlo, rhi)
                if e > raw:
                    raw, chan = e, RECENT
            expected = mean_prev
            lower = lo - ALERT_EXCESS * unit
            upper = hi + ALERT_EXCESS * unit
            # the local channel: distance to the trailing medians in robust units
            fill = int(s[_RING_FILL])
            width = int(s[_WINDOW])
            if local_w > 0.0 and fill >= LOCAL_MIN_POINTS:
                med = window.quantile_sorted(srt, fill, 0.5)
                iqr = window.quantile_sorted(srt, fill, 0.75) - window.quantile_sorted(
                    srt, fill, 0.25
                )
                near = window.quantile_sorted(short_srt, int(s[_SHORT_FILL]), 0.5)
                top = max(med, near)
                bottom = min(med, near)
                scale = max(
                    iqr / _IQR_SIGMA,
                    resolution_floor * s[_QUANTUM],
                    _LONG_SCALE_FLOOR * s[_LONG_SCALE],
                    _LONG_SCALE_FLOOR * noise,
                    RELATIVE_FLOOR * max(abs(med), 1.0),
                )
                z = _outside(x, bottom, top) / scale
                typical = s[_TYPICAL]
                if level_gate > 0.0 and chan > 0:
                    # only the level, mean or recent channel has fired so far
                    raw *= min(
                        1.0,
                        _gate_evidence(
                            z / (level_gate * typical), resid, week_resid, s, gate_seasonal
                        ),
                    )
                if z > typical:
                    e = local_w * math.log(z / typical)
                    if echo > 0.0 and not math.isnan(resid) and s[_RESID_COUNT] >= MIN_POINTS:
                        # as it was one season ago: a recurring pattern, not news
                        ratio = abs(resid) / max(s[_RESID_NOISE], RELATIVE_FLOOR)
                        e *= min(max((ratio - echo) / echo, 0.0), 1.0)
                    if e > raw:
                        raw, chan = e, LOCAL
                # the band: where either the level or the local channel reaches the alert level
                reach = typical * math.exp(ALERT_EXCESS / local_w) * scale
                loc_lo, loc_hi = bottom - reach, top + reach
                if loc_lo <= upper and loc_hi >= lower:
                    lower, upper = max(lower, loc_lo), min(upper, loc_hi)
                else:
                    lower, upper = loc_lo, loc_hi
                expected = med
        # the seasonal channel: the change from the same slot one day ago, once a full
        # day of such changes is learned (two days of data); where a week of weekly
        # changes is learned too, only as far as it is also unlike last week
        if warm and season_w > 0.0 and seasons.known(s, DAY, resid, max(MIN_POINTS, s[_SLOTS])):
            rlo, rhi = seasons.faded(s, DAY, dt, forget_s)
            value_width = hi - lo
            ratio = (rhi - rlo) / value_width if value_width > 0.0 else 1.0
            gate = min(max((1.0 - ratio) / (1.0 - _SEASONAL_FULL_RATIO), 0.0), 1.0)
            e = season_w * gate * seasons.excess(s, DAY, resid, dt, forget_s)
            if seasons.known(s, WEEK, week_resid, max(MIN_POINTS, s[WEEK[0]])):
                e = min(e, season_w * gate * seasons.excess(s, WEEK, week_resid, dt, forget_s))
            if e > raw:
                raw, chan = e, SEASONAL
        if settle_s > 0.0 and elapsed < settle_s:
            raw *= elapsed / settle_s  # a young series: its ranges are still widening
        # refractory damping
        score = 0.0
        if raw > 0.0:
            prior = 0.0
            for a in range(MAX_ALERTS):
                if al_t[a] < t and t - al_t[a] <= refr_s:
                    prior = max(prior, al_e[a])
            score = max(raw - refr_f * prior, 0.0)
            if learn and raw >= ALERT_EXCESS and refr_s > 0.0:
                pos = int(s[_ALERT_POS])
                al_t[pos] = t
                al_e[pos] = raw
                s[_ALERT_POS] = (pos + 1) % MAX_ALERTS
        out[0, i] = score
        out[1, i] = chan if score > 0.0 else 0
        out[2, i] = expected
        out[3, i] = lower
        out[4, i] = upper
        out[5, i] = 1.0 if learning else 0.0
        if not learn:
            continue
        # ---- learn the point
        if count == 0:
            s[_T_FIRST] = t
            s[_LO] = x
            s[_HI] = x
            s[_HIST_WEIGHT] = 1.0
        else:
            change = abs(x - s[_X_LAST])
            n_changes = s[_NOISE_N] + 1.0
            memory = max(memory_s / step, 10.0) if step > 0.0 else 1000.0
            s[_NOISE] = noise + max(1.0 / memory, 1.0 / n_changes) * (change - noise)
            s[_NOISE_N] = n_changes
            if change > 0.0 and (s[_QUANTUM] == 0.0 or change < s[_QUANTUM]):
                s[_QUANTUM] = change
            if step > 0.0:
                broke = 1.0 if (x > hi or x < lo) else 0.0
                s[_RECORD_RATE] += min(1.0, dt / cal_s) * (broke - s[_RECORD_RATE])
            s[_LO] = min(lo, x)
            s[_HI] = max(hi, x)
            n_iv = int(s[_INTERVALS])
            if n_iv < CADENCE_INTERVALS:
                iv[n_iv] = dt
                s[_INTERVALS] = n_iv + 1
                if n_iv + 1 == CADENCE_INTERVALS:
                    _set_cadence(P, s, iv, t)
        # the tail of the mean channel
        if ntail < mw:
            tail[ntail] = x
            s[_TAIL_N] = ntail + 1
            s[_TAIL_SUM] += x
        else:
            pos = int(s[_TAIL_POS])
            tail[pos] = x
            s[_TAIL_POS] = (pos + 1) % mw
            if pos + 1 == mw:  # re-add from scratch once per lap: no drift
                total = 0.0
                for j in range(mw):
                    total += tail[j]
                s[_TAIL_SUM] = total
            else:
                s[_TAIL_SUM] += x - oldest
        # the recent blocks
        if s[_BLOCK_SIZE] > 0.0:
            blk[0, _CUR] = max(blk[0, _CUR], mean_now)
            blk[1, _CUR] = max(blk[1, _CUR], -mean_now)
            blk[2, _CUR] = max(blk[2, _CUR], x)
            blk[3, _CUR] = max(blk[3, _CUR], -x)
            s[_BLOCK_FILL] += 1.0
            if s[_BLOCK_FILL] >= s[_BLOCK_SIZE]:
                b = int(s[_BLOCK_COUNT]) % RECENT_BLOCKS
                for r in range(4):
                    blk[r, b] = blk[r, _CUR]
                    blk[r, _CUR] = -np.inf
                    m = -np.inf
                    for c in range(RECENT_BLOCKS):
                        m = max(m, blk[r, c])
                    blk[r, _DONE] = m
                s[_BLOCK_COUNT] += 1.0
                s[_BLOCK_FILL] = 0.0
        # the local window and its calibration
        if z >= 0.0:
            s[_HIST_TOTAL] += s[_HIST_WEIGHT]
            hist[calibration.bin_of(z)] += s[_HIST_WEIGHT]
            if s[_LONG_SCALE] == 0.0:
                s[_LONG_SCALE] = iqr / _IQR_SIGMA
            else:
                s[_LONG_SCALE] += min(1.0, dt / forget_s) * (iqr / _IQR_SIGMA - s[_LONG_SCALE])
        s[_HIST_WEIGHT] *= 1.0 + dt / cal_s
        if s[_HIST_WEIGHT] > calibration.RESCALE_AT:
            hist /= s[_HIST_WEIGHT]
            s[_HIST_TOTAL] /= s[_HIST_WEIGHT]
            s[_HIST_WEIGHT] = 1.0
        if s[_TYPICAL] == 0.0 or int(count) % CALIBRATION_REFRESH == 0:
            effective = s[_HIST_TOTAL] / s[_HIST_WEIGHT]
            s[_TYPICAL] = calibration.typical(
                hist, s[_HIST_TOTAL], effective, cal_q, CALIBRATION_PRIOR,
                CALIBRATION_PRIOR_POINTS,
            )  # fmt: skip
        width = int(s[_WINDOW])
        if width > 0:
            fill = int(s[_RING_FILL])
            s[_RING_POS] = window.push(ring, srt, fill, int(s[_RING_POS]), width, x)
            s[_RING_FILL] = min(fill + 1, width)
            width = int(s[_SHORT_WIDTH])
            fill = int(s[_SHORT_FILL])
            s[_SHORT_POS] = window.push(short_ring, short_srt, fill, int(s[_SHORT_POS]), width, x)
            s[_SHORT_FILL] = min(fill + 1, width)
        # the seasonal tables and their changes' noise and range
        if step > 0.0:
            memory = max(memory_s / step, 10.0)
            seasons.learn(s, DAY, slot_v, slot_k, resid, k_index, slot, x, dt, memory, forget_s)
            seasons.learn(
                s, WEEK, week_v, week_k, week_resid, week_index, week_slot, x, dt, memory,
                forget_s,
            )  # fmt: skip
        s[_COUNT] = count + 1.0
        s[_T_LAST] = t
        s[_X_LAST] = x
