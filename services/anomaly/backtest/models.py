"""Request and response models of ``POST /api/v1/detectors/{id}/backtest``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from services.anomaly.fields import Severity, Strict, Value
from services.anomaly.series import Labels
from services.common.instants import Instant

MAX_BACKTEST = 100_000


class SeriesPoint(Strict):
    timestamp: Instant
    value: Value


class BacktestIn(Strict):
    """Score a series (or the stored history) with proposed settings; nothing is stored."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"thresholds": {"score": 0.995}, "since": "2026-11-01T00:00:00Z"},
                {
                    "algorithm": "mad",
                    "params": {},
                    "points": [
                        {"timestamp": "2026-11-23T09:00:00Z", "value": 1.0},
                        {"timestamp": "2026-11-23T09:01:00Z", "value": 1.2},
                    ],
                },
            ]
        },
    )

    algorithm: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="default: the detector's"
    )
    params: dict[str, Any] | None = Field(default=None, description="default: the detector's")
    thresholds: dict[str, Any] | None = Field(default=None, description="default: the detector's")
    points: list[SeriesPoint] | None = Field(
        default=None, description="series to score (up to 100,000); default: the stored history"
    )
    labels: Labels | None = Field(
        default=None,
        description="the series whose stored history to score (default: the unlabelled one)",
    )
    since: Instant | None = Field(default=None, description="stored history from")
    until: Instant | None = Field(default=None, description="stored history before")
    include_points: StrictBool = Field(default=True, description="return every point's score")


class BacktestPoint(BaseModel):
    timestamp: datetime
    value: float
    score: float
    expected: float | None
    lower: float | None
    upper: float | None
    is_anomaly: bool
    severity: Severity | None


class BacktestAnomaly(BaseModel):
    timestamp: datetime
    value: float
    score: float
    severity: Severity
    expected: float | None
    lower: float | None
    upper: float | None
    explanation: str
    episode_start: datetime | None


class BacktestOut(BaseModel):
    algorithm: str
    params: dict[str, Any]
    thresholds: dict[str, Any]
    count: int = Field(description="points scored")
    anomaly_count: int
    episodes: int = Field(description="alerts it would have opened (one per episode)")
    points: list[BacktestPoint] | None
    anomalies: list[BacktestAnomaly]
