"""Request and response models of the detector routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.anomaly.fields import Slug, Status, Strict


class MetricSource(BaseModel):
    """Where the series comes from: pushed to /ingest, or a named source."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"type": "push"}]})

    type: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "push"


class DetectorCreate(Strict):
    """A new detector; only `name` is required (id is generated from it when absent)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "api-latency",
                    "name": "API p95 latency",
                    "metric_source": {"type": "push"},
                    "algorithm": "auto",
                    "params": {},
                    "thresholds": {"score": 0.99, "direction": "up", "cooldown_seconds": 600},
                    "escalation_policy_id": "backend-primary",
                }
            ]
        },
    )

    id: Slug | None = Field(default=None, description="slug; generated from the name if absent")
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    metric_source: MetricSource = Field(default_factory=MetricSource)
    algorithm: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "auto"
    params: dict[str, Any] = Field(default_factory=dict, description="per algorithm")
    thresholds: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            'threshold policy: {"score": 0.99, "direction": "both|up|down", "consecutive": 1, '
            '"cooldown_seconds": 0, "upper": null, "lower": null, "critical": 0.999}'
        ),
    )
    escalation_policy_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = (
        None
    )
    enabled: bool = True


class DetectorPatch(Strict):
    """Fields to change; changing `algorithm` or `params` restarts learning."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"thresholds": {"score": 0.995}, "enabled": True}]},
    )

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    metric_source: MetricSource | None = None
    algorithm: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    params: dict[str, Any] | None = None
    thresholds: dict[str, Any] | None = None
    escalation_policy_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = (
        None
    )
    enabled: bool | None = None


class LastPoint(BaseModel):
    timestamp: datetime
    value: float | None
    score: float | None


class DetectorCounts(BaseModel):
    points: int = Field(description="points accepted since creation")
    anomalies: int
    late: int
    duplicates: int


class DetectorOut(BaseModel):
    """A detector's configuration, status and counters (its streaming state stays inside)."""

    id: str
    name: str
    description: str
    metric_source: dict[str, Any]
    algorithm: str
    params: dict[str, Any]
    thresholds: dict[str, Any]
    escalation_policy_id: str | None
    enabled: bool
    status: Status = Field(description="learning until warm, then active; disabled when off")
    n_seen: int = Field(description="points the model has learned")
    warmup: int = Field(description="points needed before scores can be non-zero")
    counts: DetectorCounts
    last_point: LastPoint | None
    last_anomaly_at: datetime | None
    created_at: datetime
    updated_at: datetime
