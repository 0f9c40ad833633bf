"""What an ingest call came to: counts, the anomalies found, pages queued; its metrics
and the JSON answer of ``POST /api/v1/ingest``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from services.anomaly.ingest.models import IngestResult
from services.common.metrics import ANOMALIES, POINTS_INGESTED


class PointLike(Protocol):
    """A point to ingest (``models.PointIn`` or anything shaped like it)."""

    @property
    def detector_id(self) -> str: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def value(self) -> float: ...
    @property
    def labels(self) -> dict[str, str] | None: ...


@dataclass
class IngestOutcome:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    refused: int = 0  # points of new series past their detector's max_series
    errors: list[dict[str, Any]] = field(default_factory=list)  # one per refused point

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "late": self.late,
            "anomalies": self.anomalies,
            "refused": self.refused,
            "errors": self.errors,
        }

    def to_json(self) -> bytes:
        """The JSON of the ``IngestResult`` answer."""
        return IngestResult.model_validate(self.as_dict()).model_dump_json().encode()

    def count(self, *, duplicates: bool = True) -> None:
        """Add this outcome to the service metrics."""
        if self.accepted:
            POINTS_INGESTED.labels("accepted").inc(self.accepted)
        if self.late:
            POINTS_INGESTED.labels("late").inc(self.late)
        if duplicates and self.duplicates:
            POINTS_INGESTED.labels("duplicate").inc(self.duplicates)
        for anomaly in self.anomalies:
            ANOMALIES.labels(anomaly["severity"]).inc()
