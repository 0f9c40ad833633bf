"""Request and response models of ``POST /api/v1/ingest``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.anomaly.anomalies.models import AnomalyOut
from services.anomaly.fields import TS_EXAMPLE, Slug, Strict, Value
from services.anomaly.series import Labels
from services.common.instants import Instant

MAX_BATCH = 10_000


class PointIn(Strict):
    """One data point of one detector."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"detector_id": "api-latency", "value": 182.4, "timestamp": TS_EXAMPLE},
                {
                    "detector_id": "api-latency",
                    "value": 182.4,
                    "timestamp": TS_EXAMPLE,
                    "labels": {"instance": "b"},
                },
            ]
        },
    )

    detector_id: Slug = Field(description="the detector this point belongs to")
    value: Value
    timestamp: Instant = Field(description="RFC 3339 with an offset", examples=[TS_EXAMPLE])
    labels: Labels | None = None


class BatchIn(Strict):
    """Up to 10,000 points of any detectors, validated as a whole."""

    points: list[PointIn] = Field(max_length=MAX_BATCH, description="at most 10,000 points")


class PointError(BaseModel):
    """A point of a batch refused on its own (the others are stored)."""

    index: int = Field(description="its position in `points`")
    detector_id: str
    labels: dict[str, str] = Field(description="the series it would have started")
    code: str = Field(description="`max_series`: its detector has `max_series` series already")
    message: str


class IngestResult(BaseModel):
    """What an ingest stored: counts and the anomalies found (scoring is synchronous)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 2,
                    "duplicates": 0,
                    "late": 0,
                    "anomalies": [
                        {
                            "id": 1042,
                            "detector_id": "api-latency",
                            "timestamp": TS_EXAMPLE,
                            "value": 950.0,
                            "score": 0.9999,
                            "severity": "critical",
                            "expected": 181.0,
                            "lower": 150.2,
                            "upper": 211.8,
                            "late": False,
                            "explanation": "value 950 is above the expected band [150, 212].",
                            "episode_start": TS_EXAMPLE,
                            "status": "open",
                            "note": None,
                            "reviewed_at": None,
                            "ingested_at": TS_EXAMPLE,
                            "labels": {},
                        }
                    ],
                    "refused": 0,
                    "errors": [],
                }
            ]
        }
    )

    accepted: int = Field(description="points stored (scored, late ones included)")
    duplicates: int = Field(description="points ignored: same detector and timestamp stored")
    late: int = Field(description="points older than their detector's latest (not learned)")
    anomalies: list[AnomalyOut]
    refused: int = Field(
        default=0,
        description="points refused: they would start a series past their detector's max_series",
    )
    errors: list[PointError] = Field(default_factory=list, description="one per refused point")
