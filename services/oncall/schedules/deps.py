"""Dependencies of the schedule routes: the instant and range query parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import AwareDatetime

At = Annotated[AwareDatetime | None, Query(description="RFC 3339 instant with offset; default now")]
Since = Annotated[AwareDatetime | None, Query(description="range start (RFC 3339 with offset)")]
Until = Annotated[
    AwareDatetime | None, Query(description="range end (RFC 3339 with offset); at most 366 days")
]
