"""Answer shapes of the points route."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.anomaly.fields import FeedbackStatus, Severity


class PointOut(BaseModel):
    id: int = Field(description="the point's id (an anomaly's id for PATCH /anomalies/{id})")
    timestamp: datetime
    value: float
    score: float | None = Field(description="null until scored")
    expected: float | None
    lower: float | None
    upper: float | None
    is_anomaly: bool
    severity: Severity | None = Field(description="anomalies only")
    status: FeedbackStatus | None = Field(description="feedback of an anomaly; null otherwise")
    explanation: str | None = Field(description="anomalies only: the one-sentence explanation")
    late: bool


class PointsOut(BaseModel):
    detector_id: str
    labels: dict[str, str] = Field(description="the labels of the series drawn ({}: no labels)")
    since: datetime
    until: datetime
    total: int = Field(description="points stored in [since, until)")
    anomalies: int = Field(description="anomalies among them (all returned unless over max_points)")
    decimated: bool = Field(description="true when fewer points than stored are returned")
    max_points: int
    points: list[PointOut] = Field(description="oldest first")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "detector_id": "api-latency",
                    "labels": {},
                    "since": "2026-11-22T09:00:00Z",
                    "until": "2026-11-23T09:00:00Z",
                    "total": 1440,
                    "anomalies": 1,
                    "decimated": False,
                    "max_points": 2000,
                    "points": [
                        {
                            "id": 1042,
                            "timestamp": "2026-11-23T08:59:00Z",
                            "value": 950.0,
                            "score": 0.9999,
                            "expected": 181.0,
                            "lower": 150.2,
                            "upper": 211.8,
                            "is_anomaly": True,
                            "severity": "critical",
                            "status": "open",
                            "explanation": "auto: value 950 is 41 noise units above ...",
                            "late": False,
                        }
                    ],
                }
            ]
        }
    }
