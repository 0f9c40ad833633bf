"""Response models of ``GET /api/v1/stats``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Counts(BaseModel):
    points: int = Field(description="points stored in the window")
    anomalies: int
    by_severity: dict[str, int]
    reviewed: int = Field(description="anomalies with feedback other than open")
    confirmed: int
    false_positives: int
    resolved: int
    false_positive_rate: float | None = Field(
        description="false_positives / (false_positives + confirmed); null when neither"
    )


class SeriesStats(Counts):
    labels: dict[str, str] = Field(description="the series' labels (`{}`: the unlabelled one)")


class DetectorStats(Counts):
    detector_id: str
    series: list[SeriesStats] | None = Field(
        default=None, description="with `by_series=true`: its series with points in the window"
    )


class StatsOut(BaseModel):
    since: datetime | None
    until: datetime | None
    account: Counts
    detectors: list[DetectorStats]
