"""The one timestamp type of both APIs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from services.common.instants import EARLIEST, LATEST, PATTERN, Instant

INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T09:00:00Z", datetime(2026, 11, 23, 9, tzinfo=UTC)),
        ("2026-11-23T10:00:00+01:00", datetime(2026, 11, 23, 9, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", EARLIEST),
        ("2199-12-31T23:59:59Z", LATEST - timedelta(seconds=1)),
    ],
)
def test_rfc_3339_with_an_offset_is_taken(text: str, expected: datetime) -> None:
    assert INSTANT.validate_python(text) == expected
    assert INSTANT.validate_json(f'"{text}"') == expected


@pytest.mark.parametrize(
    "value",
    [
        1700000000,
        1.7e9,
        "1700000000",
        "-1e-144",
        "2026-11-23T09:00:00",  # no offset
        "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "",
        None,
    ],
)
def test_numbers_naive_and_far_off_instants_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        INSTANT.validate_python(value)


def test_a_datetime_in_range_passes_through() -> None:
    at = datetime(2026, 11, 23, 9, tzinfo=timezone(timedelta(hours=5)))
    assert INSTANT.validate_python(at) is at


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23T09:00Z",  # no seconds
        "2026-11-23 09:00:00Z",  # a space for the T
        "2026-11-23T09:00:00+0100",  # an offset without its colon
        "2026-02-30T09:00:00Z",  # no such day
    ],
)
def test_only_rfc_3339_text_is_taken(text: str) -> None:
    """What the OpenAPI documents say (``PATTERN``) is what is taken: schemathesis sends
    text outside the pattern and expects a refusal."""
    with pytest.raises(ValidationError):
        INSTANT.validate_json(f'"{text}"')
    with pytest.raises(ValidationError):
        INSTANT.validate_python(text)


def test_the_json_schema_states_the_rule() -> None:
    schema = INSTANT.json_schema()
    assert schema["format"] == "date-time" and schema["pattern"] == PATTERN
    assert re.fullmatch(PATTERN[1:-1], "2199-12-31T23:59:59.5-00:30")
    assert not re.fullmatch(PATTERN[1:-1], "2200-01-01T00:00:00Z")
    assert not re.fullmatch(PATTERN[1:-1], "1969-12-31T23:59:59Z")
