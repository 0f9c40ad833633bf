"""Small builders shared by the resolver tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.oncall.resolver import Layer, Override, Restriction, Rotation, Schedule, Segment


def layer(
    name: str,
    kind: str,
    handoff: str,
    people: list[str],
    *,
    length: int = 1,
    shift_seconds: int | None = None,
    restrictions: list[dict[str, Any]] | None = None,
) -> Layer:
    """A layer from SPEC-shaped pieces."""
    return Layer(
        name=name,
        rotation=Rotation(
            type=kind,
            handoff=handoff,
            participants=tuple(people),
            length=length,
            shift_seconds=shift_seconds,
        ),
        restrictions=tuple(Restriction.from_dict(r) for r in restrictions or []),
    )


def schedule(zone: str, *layers: Layer, overrides: list[Override] | None = None) -> Schedule:
    """A one-revision schedule."""
    return Schedule(timezone=zone, layers=layers, id="s1", overrides=tuple(overrides or []))


def local(zone: str, *parts: int, fold: int = 0) -> datetime:
    """An aware datetime from local wall-clock parts (``fold`` picks the occurrence)."""
    return datetime(*parts, tzinfo=ZoneInfo(zone), fold=fold)  # type: ignore[misc]


def utc(*parts: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def table(segments: tuple[Segment, ...], zone: str) -> list[tuple[str, str, str | None]]:
    """Segments as ``(local start, local end, person)`` strings, for readable asserts."""
    tz = ZoneInfo(zone)
    fmt = "%Y-%m-%d %H:%M%z"
    return [
        (s.start.astimezone(tz).strftime(fmt), s.end.astimezone(tz).strftime(fmt), s.person_id)
        for s in segments
    ]
