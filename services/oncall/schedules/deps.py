"""Dependencies of the schedule routes: the instant and range query parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from services.common.instants import Instant

At = Annotated[Instant | None, Query(description="RFC 3339 instant with offset; default now")]
Since = Annotated[Instant | None, Query(description="range start (RFC 3339 with offset)")]
Until = Annotated[
    Instant | None, Query(description="range end (RFC 3339 with offset); at most 366 days")
]
