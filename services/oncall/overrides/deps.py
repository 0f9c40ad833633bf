"""Dependencies of the override routes: the list filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import AwareDatetime

ScheduleFilter = Annotated[str | None, Query()]
Since = Annotated[AwareDatetime | None, Query()]
Until = Annotated[AwareDatetime | None, Query()]
