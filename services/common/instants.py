"""Instants as both APIs take them: RFC 3339 text with an offset, 1970 to 2200.

``Instant`` is the one type for a timestamp in a body or a query parameter.
A naive timestamp, a text that is not RFC 3339 (no seconds, a space for the
``T``), a bare number (pydantic alone reads ``1700000000`` and
``"-1e-144"`` as Unix time, so ``?at=-1e-144`` meant 1970) or an instant
outside [1970-01-01, 2200-01-01) is a 422 naming the field. The checks run in
pydantic-core (a string of ``PATTERN``, then an aware datetime within the
bounds), so a 10,000-point ingest body pays nothing for them in Python.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

# RFC 3339's date-time (seconds and an offset required) with a year from 1970 to 2199:
# the text is checked against it, then read by pydantic-core's parser (which refuses
# a date that does not exist) and the instant bounded (an offset can move a time on the
# first or last day across a bound). The OpenAPI documents give the same pattern.
PATTERN = (
    r"^(19[7-9][0-9]|2[01][0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
DESCRIPTION = (
    "RFC 3339 date-time with an offset (2026-11-23T09:00:00Z), from 1970-01-01T00:00:00Z "
    "(inclusive) to 2200-01-01T00:00:00Z (exclusive)"
)


class _Rfc3339:
    """The core schema of ``Instant`` (see the module docstring)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        bounded = core_schema.datetime_schema(tz_constraint="aware", ge=EARLIEST, lt=LATEST)
        text = core_schema.chain_schema([core_schema.str_schema(pattern=PATTERN), bounded])
        given = core_schema.chain_schema([core_schema.is_instance_schema(datetime), bounded])
        return core_schema.json_or_python_schema(
            json_schema=text, python_schema=core_schema.union_schema([given, text])
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "format": "date-time",
            "pattern": PATTERN,
            "description": DESCRIPTION,
        }


Instant = Annotated[datetime, _Rfc3339()]
