"""Payload and answer types of the Hasura action and event trigger.

The action's types mirror ``hasura/metadata/actions.graphql`` (a test checks
them); the event payload is Hasura's documented event body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.anomaly.fields import Severity, Slug, Value
from services.anomaly.series import Labels
from services.common.instants import Instant


class AnomalyPointInput(BaseModel):
    """GraphQL ``input AnomalyPointInput``: one point to score."""

    model_config = ConfigDict(extra="forbid")

    detector_id: Slug = Field(description="GraphQL String!")
    value: Value = Field(description="GraphQL Float!")
    timestamp: Instant = Field(description="GraphQL timestamptz! (RFC 3339 with offset)")
    labels: Labels | None = Field(default=None, description="GraphQL jsonb (string values)")


class ScoreAnomalyPointsInput(BaseModel):
    """The action's arguments, i.e. the payload's ``input``: ``{"points": [...]}``."""

    model_config = ConfigDict(extra="forbid")

    points: list[AnomalyPointInput] = Field(description="GraphQL [AnomalyPointInput!]!")


class ScorePointError(BaseModel):
    """GraphQL ``type ScorePointError``: a point refused on its own (``max_series``)."""

    index: int = Field(description="Int!")
    detector_id: str = Field(description="String!")
    labels: dict[str, str] = Field(description="jsonb!")
    code: str = Field(description="String!")
    message: str = Field(description="String!")


class ScoredAnomaly(BaseModel):
    """GraphQL ``type ScoredAnomaly``: an anomaly found while scoring."""

    id: int = Field(description="GraphQL bigint! (np_anomaly_data_points.id)")
    detector_id: str = Field(description="String!")
    labels: dict[str, str] = Field(description="jsonb! (the series' labels)")
    timestamp: datetime = Field(description="timestamptz!")
    value: float = Field(description="Float!")
    score: float = Field(description="Float!")
    severity: Severity = Field(description="String! (warning | critical)")
    expected: float | None = Field(description="Float")
    lower: float | None = Field(description="Float")
    upper: float | None = Field(description="Float")
    late: bool = Field(description="Boolean!")
    explanation: str = Field(description="String!")
    episode_start: datetime | None = Field(description="timestamptz")


class ScoreAnomalyPointsOutput(BaseModel):
    """GraphQL ``type ScoreAnomalyPointsOutput``."""

    accepted: int = Field(description="Int!")
    duplicates: int = Field(description="Int!")
    late: int = Field(description="Int!")
    anomalies: list[ScoredAnomaly] = Field(description="[ScoredAnomaly!]!")
    refused: int = Field(description="Int! (points past their detector's max_series)")
    errors: list[ScorePointError] = Field(description="[ScorePointError!]!")


class ActionName(BaseModel):
    name: str


class ActionPayload(BaseModel):
    """Hasura's action webhook body."""

    action: ActionName
    input: dict[str, Any]
    session_variables: dict[str, str] = Field(default_factory=dict)
    request_query: str | None = None


# -- event types ----------------------------------------------------------------
class EventTable(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_: str = Field(alias="schema")
    name: str


class EventTrigger(BaseModel):
    name: str


class EventData(BaseModel):
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None


class EventBody(BaseModel):
    op: Literal["INSERT", "UPDATE", "DELETE", "MANUAL"]
    data: EventData
    session_variables: dict[str, Any] | None = None
    trace_context: dict[str, Any] | None = None


class EventPayload(BaseModel):
    """Hasura's event trigger webhook body."""

    id: str
    created_at: str
    trigger: EventTrigger
    table: EventTable
    event: EventBody
    delivery_info: dict[str, Any] | None = None


class EventResult(BaseModel):
    event_id: str
    detector_id: str | None
    scored: int = Field(description="points scored by this delivery (0: nothing left to do)")
    late: int
    anomalies: int
    skipped: str | None = Field(
        default=None, description="why nothing was scored (operation, disabled detector)"
    )
