"""What the nself-anomaly routes share: the app's pool and ingest pipeline, and the
path and query parameters several routes take."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import StringConstraints

from services.anomaly.ingest.pipeline import Ingestor
from services.anomaly.series import MAX_NAME_LENGTH
from services.common.instants import Instant
from services.common.responses import errors

ERRORS: dict[int | str, dict[str, Any]] = errors(
    404, 422, d422="invalid input; the message names the field (and point index)"
)
# a point id is a Postgres bigint: one past its range cannot exist (a 422 by the schema)
AnomalyId = Annotated[
    int, Path(ge=-(2**63), le=2**63 - 1, description="the point's id", examples=[1042])
]
DetectorId = Annotated[str, Path(description="detector slug", examples=["api-latency"])]
Since = Annotated[Instant | None, Query(description="from (inclusive), RFC 3339")]
Until = Annotated[Instant | None, Query(description="before (exclusive), RFC 3339")]
SeriesQuery = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**63 - 1,
        description="only this series (its `id` in /api/v1/detectors/{id}/series)",
    ),
]
# name=value; a value longer than any stored one just matches nothing
LABEL_SELECTOR = f"^[a-zA-Z_][a-zA-Z0-9_]{{0,{MAX_NAME_LENGTH - 1}}}="
LabelQuery = Annotated[
    list[Annotated[str, StringConstraints(pattern=LABEL_SELECTOR)]] | None,
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
