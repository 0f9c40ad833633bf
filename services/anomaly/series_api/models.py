"""Response models of the series routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.anomaly.detectors_api.models import DetectorCounts, LastPoint
from services.anomaly.fields import Status


class SeriesOut(BaseModel):
    """One series of a detector: its labels, status and counters (its model stays inside)."""

    id: int = Field(description="the series' id (the `series=` filter of anomalies and stats)")
    detector_id: str
    labels: dict[str, str] = Field(description="its label set (`{}`: the unlabelled series)")
    status: Status = Field(
        description="`learning` while its model says so, then `active`; `disabled` with its "
        "detector"
    )
    no_data_since: datetime | None = Field(
        default=None,
        description=(
            "silent: the timestamp of its last point, when a `no_data` anomaly was recorded "
            "for it (its detector's `no_data_seconds`); null while it reports"
        ),
    )
    n_seen: int = Field(description="points its model has learned")
    warmup: int
    counts: DetectorCounts
    last_point: LastPoint | None
    last_anomaly_at: datetime | None
    created_at: datetime = Field(description="when its first point arrived")
    updated_at: datetime
