"""Instants as both APIs take them: RFC 3339 text with an offset, 1970 to 2200.

``Instant`` is the one type for a timestamp in a body or a query parameter.
A naive timestamp, a bare number (pydantic would read it as Unix time, so
``?at=-1e-144`` meant 1970) or an instant outside [1970-01-01, 2200-01-01) is
a 422 naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

# the text must start as a calendar date; the rest is pydantic's RFC 3339 parsing
_DATE_FIRST = re.compile(r"\d{4}-\d{2}-\d{2}")
_FORMAT = "must be an RFC 3339 timestamp with an offset, such as 2026-11-23T09:00:00Z"


def _text_or_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_FIRST.match(value):
        raise ValueError(_FORMAT)
    return value


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be from 1970-01-01 to 2200-01-01")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_text_or_datetime), AfterValidator(_in_range)]
