"""Dependencies of the override routes: the list filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from services.common.instants import Instant

ScheduleFilter = Annotated[str | None, Query()]
Since = Annotated[Instant | None, Query()]
Until = Annotated[Instant | None, Query()]
