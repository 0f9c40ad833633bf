"""What the nself-anomaly routes share: the app's pool and ingest pipeline, and the
path and query parameters several routes take."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request

from services.anomaly.ingest.pipeline import Ingestor
from services.common.instants import Instant

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or invalid bearer"},
    404: {"description": "no such resource in this account"},
    422: {"description": "invalid input; the message names the field (and point index)"},
}
DetectorId = Annotated[str, Path(description="detector slug", examples=["api-latency"])]
Since = Annotated[Instant | None, Query(description="from (inclusive), RFC 3339")]
Until = Annotated[Instant | None, Query(description="before (exclusive), RFC 3339")]
SeriesQuery = Annotated[
    int | None,
    Query(ge=1, description="only this series (its `id` in /api/v1/detectors/{id}/series)"),
]
LabelQuery = Annotated[
    list[str] | None,
    Query(
        description="`name=value`, repeatable: only series with these labels",
        examples=["instance=b"],
    ),
]


def pool_of(request: Request) -> Any:
    return request.app.state.pool


def ingestor_of(request: Request) -> Ingestor:
    ingestor: Ingestor = request.app.state.ingestor
    return ingestor
