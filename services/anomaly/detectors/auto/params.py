"""Parameters of ``auto`` and the constants its parts share.

Every length is a duration in seconds: the kernel turns it into points with
the series' own cadence (the median of its first intervals), so a setting
means the same for one-minute and one-hour data.
"""

from __future__ import annotations

from pydantic import Field

from ..base import DetectorParams

__all__ = [
    "ALERT_EXCESS",
    "CHANNELS",
    "AutoParams",
]

#: Excess (in noise units, after the weights) at which the score is 0.99, the default alert level.
ALERT_EXCESS = 0.5
#: Points needed before any score (the cadence is the median of the first 16 intervals).
MIN_POINTS = 20
#: Intervals whose median sets the cadence.
CADENCE_INTERVALS = 16
#: Bounds of the local window, in points (its length is ``local_seconds`` at the cadence).
LOCAL_MIN_POINTS, LOCAL_MAX_POINTS = 16, 256
#: Bounds of the short trailing window, in points.
SHORT_MIN_POINTS, SHORT_MAX_POINTS = 3, 64
#: Most time slots per season (finer cadences share a slot): bounds the state.
MAX_SLOTS = 1440
#: Most time slots of the weekly table (10 minutes each): it only asks "like last week?".
WEEK_MAX_SLOTS = 1008
#: Blocks the recent ranges are kept in.
RECENT_BLOCKS = 10
#: Recent alerts kept for the refractory damping.
MAX_ALERTS = 32
#: Smallest noise unit, relative to the magnitude of the values.
RELATIVE_FLOOR = 1e-9
#: Calibration prior: the typical-high robust deviation assumed before history,
#: and the points of history it weighs as.
CALIBRATION_PRIOR = 3.0
CALIBRATION_PRIOR_POINTS = 200.0
#: The calibration quantile is refreshed every this many learned points.
CALIBRATION_REFRESH = 16

#: Channel names by the code stored in ``Scores.detail``.
CHANNELS = ("none", "level", "mean", "seasonal", "recent", "local")
LEVEL, MEAN, SEASONAL, RECENT, LOCAL = 1, 2, 3, 4, 5

_DAY = 86400.0


class AutoParams(DetectorParams):
    """Parameters of :class:`~.detector.AutoDetector` (the defaults suit most series)."""

    warmup_seconds: float = Field(
        6 * 3600.0, ge=0.0, description="time learned before scores can be non-zero"
    )
    memory_seconds: float = Field(
        3.5 * _DAY, gt=0.0, description="time constant of the level channel's noise unit"
    )
    forget_seconds: float = Field(
        23 * _DAY, gt=0.0, description="time for a past extreme to fade by one noise unit"
    )
    mean_window: int = Field(10, ge=2, le=64, description="points in the mean channel")
    recent_seconds: float = Field(
        3.5 * _DAY, gt=0.0, description="span of the mean and recent channels' ranges"
    )
    recent_max_points: int = Field(
        1000,
        ge=RECENT_BLOCKS,
        le=100_000,
        description="most points in the recent ranges (a one-minute series keeps 17 hours "
        "of them): enough for the statistics, short enough to forget an old incident",
    )
    local_seconds: float = Field(
        6 * 3600.0,
        gt=0.0,
        description="span of the local channel's trailing window (16 to 256 points)",
    )
    short_seconds: float = Field(
        1800.0,
        gt=0.0,
        description="span of the short trailing median (3 to 64 points): only the first "
        "part of a level shift is far from both medians",
    )
    season_seconds: float = Field(
        _DAY, ge=0.0, description="season in seconds; 0 turns the seasonal channel off"
    )
    week_seconds: float = Field(
        7 * _DAY,
        ge=0.0,
        description="the second season, in seconds: the seasonal channel and the level gate "
        "count a change from yesterday only as far as it is also a change from one week "
        "ago, once a week of such changes is learned (0: off)",
    )
    refractory_seconds: float = Field(
        4 * 3600.0, ge=0.0, description="time a past alert damps repeats"
    )
    refractory_factor: float = Field(
        0.9, ge=0.0, le=1.0, description="share of the largest recent excess taken off"
    )
    level_weight: float = Field(0.85, ge=0.0, le=1.0, description="weight of the level channel")
    mean_weight: float = Field(0.5, ge=0.0, le=1.0, description="weight of the mean channel")
    recent_weight: float = Field(
        0.15, ge=0.0, le=1.0, description="weight of the value against its recent range"
    )
    seasonal_weight: float = Field(
        0.4, ge=0.0, le=1.0, description="largest weight of the seasonal channel"
    )
    local_weight: float = Field(
        0.6, ge=0.0, le=2.0, description="weight of the local robust channel"
    )
    calibration_quantile: float = Field(
        0.995,
        ge=0.9,
        lt=1.0,
        description="quantile of the series' own past local deviations taken as typical-high",
    )
    resolution_floor: float = Field(
        1.0,
        ge=0.0,
        le=10.0,
        description="the local scale is at least this many times the data's resolution "
        "(its smallest change): a single count or a rounding step is not news",
    )
    record_rate: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="share of points allowed to break the level range before the level "
        "channel is discounted in proportion (a trend makes records all the time; 0: never)",
    )
    seasonal_echo: float = Field(
        2.0,
        ge=0.0,
        le=10.0,
        description="a local deviation within this many seasonal noise units of the value "
        "one season ago is discounted (full weight from twice as far; 0: off)",
    )
    settle_seconds: float = Field(
        3 * _DAY,
        ge=0.0,
        description="time from the first point over which the excess ramps in linearly: "
        "a young series' ranges have not yet seen its normal highs and lows (0: off)",
    )
    level_gate: float = Field(
        1.0,
        ge=0.0,
        le=10.0,
        description="the level, mean and recent channels count in full only where the "
        "point is also this far (in typical-high local deviations) from the trailing "
        "medians, and in proportion below: a new record that is locally ordinary (a slow "
        "trend, a cycle's new high) is not news (0: off)",
    )
    level_gate_seasonal: float = Field(
        1.3,
        ge=0.0,
        le=10.0,
        description="the change from one season ago opens the level gate too: in full where "
        "it is this far from the middle of the range of seasonal changes (in half-widths of "
        "that range), in proportion below; a new low on a holiday is news even where each "
        "point is close to its neighbours (0: only local evidence opens the gate)",
    )
    calibration_seconds: float = Field(
        7 * _DAY, gt=0.0, description="time constant of the local channel's calibration"
    )
