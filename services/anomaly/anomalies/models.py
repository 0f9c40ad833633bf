"""Request and response models of the anomalies routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.anomaly.fields import FeedbackStatus, Severity, Strict

AnomalyKind = Literal["point", "no_data"]


class AnomalyOut(BaseModel):
    """An anomalous point: its score, the band the model expected and why."""

    id: int
    detector_id: str
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="the labels of its series (`{}`: the detector's one unlabelled series)",
    )
    kind: AnomalyKind = Field(
        default="point",
        description=(
            "`point`: a scored point; `no_data`: the series stopped reporting for the "
            "detector's `no_data_seconds` (timestamp: when that was recorded; value: its "
            "last value; the explanation says since when)"
        ),
    )
    timestamp: datetime
    value: float
    score: float
    severity: Severity
    expected: float | None = Field(description="what the model expected (null: no opinion)")
    lower: float | None = Field(description="lower edge of the normal band")
    upper: float | None = Field(description="upper edge of the normal band")
    late: bool = Field(description="older than the detector's latest point when it arrived")
    explanation: str
    episode_start: datetime | None = Field(
        default=None, description="start of the anomaly episode this point belongs to"
    )
    status: FeedbackStatus = "open"
    note: str | None = None
    reviewed_at: datetime | None = None
    ingested_at: datetime | None = None


class NeighbourPoint(BaseModel):
    id: int
    timestamp: datetime
    value: float
    score: float | None
    is_anomaly: bool
    expected: float | None
    lower: float | None
    upper: float | None
    late: bool


class AnomalyDetail(AnomalyOut):
    """An anomaly with the configuration it was scored under and its neighbours."""

    algorithm: str | None = Field(description="algorithm at scoring time")
    params: dict[str, Any] | None = Field(description="parameters at scoring time")
    thresholds: dict[str, Any] | None = Field(description="threshold policy at scoring time")
    context: dict[str, Any] = Field(description="everything recorded when it was scored")
    neighbours: list[NeighbourPoint] = Field(description="points around it, oldest first")


class AnomalyPatch(Strict):
    """Feedback on an anomaly."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status": "false_positive", "note": "deploy at 09:00"}]},
    )

    status: FeedbackStatus | None = None
    note: Annotated[str, StringConstraints(max_length=4000)] | None = None
