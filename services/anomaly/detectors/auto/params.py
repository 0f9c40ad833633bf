"""Parameters of ``auto`` and the constants its parts share."""

from __future__ import annotations

import math

from pydantic import Field

from ..base import DetectorParams

__all__ = ["CHANNELS", "EXCESS_AT_ALERT", "AutoParams"]

#: Excess (in noise units) at which the score reaches 0.99, the default alert level.
EXCESS_AT_ALERT = 0.5
#: ``score = 1 - exp(-SCORE_RATE * excess)``: 0.99 at ``EXCESS_AT_ALERT``.
SCORE_RATE = -math.log(0.01) / EXCESS_AT_ALERT
#: Blocks the recent range is kept in (its length varies by one block).
RECENT_BLOCKS = 10
#: Rows of the recent-range blocks: maxima of the mean, of -mean, of the value, of -value.
RECENT_ROWS = 4
#: Smallest noise unit, relative to the magnitude of the range.
RELATIVE_FLOOR = 1e-9

#: Channel names by the code stored in ``Scores.detail``.
CHANNELS = ("none", "level", "mean", "seasonal", "recent")
LEVEL, MEAN, SEASONAL, RECENT = 1, 2, 3, 4


class AutoParams(DetectorParams):
    """Parameters of :class:`~.detector.AutoDetector` (the defaults suit most series)."""

    warmup: int = Field(100, ge=10, description="points learned before scores can be non-zero")
    memory: int = Field(
        1000, ge=10, description="points the noise units average over (EWMA 1/memory)"
    )
    forget: float = Field(
        3000.0, gt=0.0, description="points for a past extreme to fade by one noise unit"
    )
    mean_window: int = Field(10, ge=2, le=1000, description="points in the mean channel")
    recent: int = Field(
        1000, ge=RECENT_BLOCKS, le=1_000_000, description="points in the mean's recent range"
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
