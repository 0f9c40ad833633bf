"""Request and response models of the nself-anomaly API (pydantic v2).

Timestamps are RFC 3339 with an offset (``AwareDatetime``): a naive timestamp
is a 422. Values are finite JSON numbers (no strings, no NaN/Infinity).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

MAX_BATCH = 10_000
MAX_BACKTEST = 100_000
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
Value = Annotated[
    float,
    Field(strict=True, allow_inf_nan=False, description="a finite number", examples=[42.5]),
]
Status = Literal["learning", "active", "disabled"]
Severity = Literal["warning", "critical"]
FeedbackStatus = Literal["open", "confirmed", "false_positive", "resolved"]

_TS_EXAMPLE = "2026-11-23T09:00:00Z"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- points -------------------------------------------------------------------
class PointIn(_Strict):
    """One data point of one detector."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"detector_id": "api-latency", "value": 182.4, "timestamp": _TS_EXAMPLE}]
        },
    )

    detector_id: Slug = Field(description="the detector this point belongs to")
    value: Value
    timestamp: AwareDatetime = Field(description="RFC 3339 with an offset", examples=[_TS_EXAMPLE])


class BatchIn(_Strict):
    """Up to 10,000 points of any detectors, validated as a whole."""

    points: list[PointIn] = Field(description="at most 10,000 points")


class AnomalyOut(BaseModel):
    """An anomalous point: its score, the band the model expected and why."""

    id: int
    detector_id: str
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
                            "timestamp": _TS_EXAMPLE,
                            "value": 950.0,
                            "score": 0.9999,
                            "severity": "critical",
                            "expected": 181.0,
                            "lower": 150.2,
                            "upper": 211.8,
                            "late": False,
                            "explanation": "value 950 is above the expected band [150, 212].",
                            "episode_start": _TS_EXAMPLE,
                            "status": "open",
                            "note": None,
                            "reviewed_at": None,
                            "ingested_at": _TS_EXAMPLE,
                        }
                    ],
                }
            ]
        }
    )

    accepted: int = Field(description="points stored (scored, late ones included)")
    duplicates: int = Field(description="points ignored: same detector and timestamp stored")
    late: int = Field(description="points older than their detector's latest (not learned)")
    anomalies: list[AnomalyOut]


# -- detectors ----------------------------------------------------------------
class MetricSource(BaseModel):
    """Where the series comes from: pushed to /ingest, or a named source."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"type": "push"}]})

    type: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "push"


class DetectorCreate(_Strict):
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


class DetectorPatch(_Strict):
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


# -- backtest -----------------------------------------------------------------
class SeriesPoint(_Strict):
    timestamp: AwareDatetime
    value: Value


class BacktestIn(_Strict):
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
    since: AwareDatetime | None = Field(default=None, description="stored history from")
    until: AwareDatetime | None = Field(default=None, description="stored history before")
    include_points: bool = Field(default=True, description="return every point's score")


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


# -- anomalies ----------------------------------------------------------------
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


class AnomalyPatch(_Strict):
    """Feedback on an anomaly."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status": "false_positive", "note": "deploy at 09:00"}]},
    )

    status: FeedbackStatus | None = None
    note: Annotated[str, StringConstraints(max_length=4000)] | None = None


# -- stats --------------------------------------------------------------------
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


class DetectorStats(Counts):
    detector_id: str


class StatsOut(BaseModel):
    since: datetime | None
    until: datetime | None
    account: Counts
    detectors: list[DetectorStats]
