"""The schedule value: its revisions (configurations over time) and its overrides.

The schedule types (these and the layer types of :mod:`.layers`) are plain
frozen dataclasses that normalise and validate themselves. Every type accepts
either already-typed values or the JSON shapes of the SPEC (section 5):
``Rotation(type="daily", handoff="2026-11-23T09:00", ...)`` and
``Rotation(type=RotationType.DAILY, handoff=datetime(2026, 11, 23, 9), ...)``
build the same value. Like GoAlert's ``Normalize()``, construction gathers
*every* field error (nested ones with their path, e.g.
``layers[1].rotation.handoff``) and raises one :class:`ScheduleError`
carrying the list, so an API can answer 422 with all of them at once
(see :mod:`.coerce`).

``from_dict`` is the strict entry point for JSON bodies: it also reports
missing and unknown keys. ``to_dict`` gives the JSON shape back.

A :class:`Schedule` is a sequence of configurations (:class:`Revision`), each
in force from its ``effective_from`` until the next one: editing a schedule
appends a revision (:meth:`Schedule.revise`) instead of changing the past.
The simple case is one revision: ``Schedule(timezone=..., layers=[...])``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from . import coerce
from .errors import FieldError, ScheduleError
from .layers import Layer

__all__ = ["Override", "Revision", "Schedule"]

MAX_LAYERS = 50


def _layers(value: Any, name: str, errors: list[FieldError]) -> tuple[Layer, ...] | None:
    layers = coerce.items(
        value, name, errors, coerce.nested(Layer), max_items=MAX_LAYERS, required=False
    )
    if layers is None:
        return None
    seen: set[str] = set()
    for i, layer in enumerate(layers):
        if layer.name in seen:
            errors.append(FieldError(f"{name}[{i}].name", f"duplicate layer name {layer.name!r}"))
            return None
        seen.add(layer.name)
    return layers


@dataclass(frozen=True, slots=True)
class Revision:
    """One configuration of a schedule, in force from ``effective_from``.

    ``effective_from=None`` (only allowed on the first revision) means it has
    always been in force.
    """

    timezone: str
    layers: tuple[Layer, ...] = ()
    effective_from: datetime | None = None

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        timezone = coerce.timezone(self.timezone, "timezone", errors)
        layers = _layers(self.layers, "layers", errors)
        effective_from = (
            None
            if self.effective_from is None
            else coerce.aware(self.effective_from, "effective_from", errors)
        )
        if errors:
            raise ScheduleError(errors)
        coerce.set_fields(self, timezone=timezone, layers=layers, effective_from=effective_from)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = True) -> Revision:
        """Build from ``{"timezone", "layers", "effective_from"}``."""
        return coerce.from_mapping(cls, data, ("timezone",), strict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {
            "timezone": self.timezone,
            "layers": [layer.to_dict() for layer in self.layers],
            "effective_from": None
            if self.effective_from is None
            else self.effective_from.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Override:
    """``person_id`` is on call from ``start`` to ``end``, above every layer.

    Where overrides overlap, the latest created wins: ordered by
    ``created_at`` (missing = oldest), then ``sequence``, then ``id``.
    """

    id: str
    person_id: str
    start: datetime
    end: datetime
    created_at: datetime | None = None
    sequence: int = 0
    reason: str = ""
    schedule_id: str | None = None

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        oid = coerce.text(self.id, "id", errors)
        person = coerce.text(self.person_id, "person_id", errors)
        start = coerce.aware(self.start, "start", errors)
        end = coerce.aware(self.end, "end", errors)
        created_at = (
            None if self.created_at is None else coerce.aware(self.created_at, "created_at", errors)
        )
        sequence = coerce.integer(self.sequence, "sequence", errors, -(2**63), 2**63 - 1)
        reason = (
            ""
            if self.reason is None
            else coerce.text(self.reason, "reason", errors, allow_empty=True)
        )
        schedule_id = (
            None
            if self.schedule_id is None
            else coerce.text(self.schedule_id, "schedule_id", errors)
        )
        if start is not None and end is not None and not start < end:
            errors.append(FieldError("end", "must be after start"))
        if errors:
            raise ScheduleError(errors)
        coerce.set_fields(
            self,
            id=oid,
            person_id=person,
            start=start,
            end=end,
            created_at=created_at,
            sequence=sequence,
            reason=reason,
            schedule_id=schedule_id,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = True) -> Override:
        """Build from an override row or request body."""
        return coerce.from_mapping(cls, data, ("id", "person_id", "start", "end"), strict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {
            "id": self.id,
            "schedule_id": self.schedule_id,
            "person_id": self.person_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
            "sequence": self.sequence,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Schedule:
    """A schedule: its latest configuration, earlier ones (``history``) and overrides.

    ``timezone``/``layers``/``effective_from`` are the latest revision;
    ``history`` holds the earlier ones, oldest first, each in force until the
    next one's ``effective_from``. With no history and ``effective_from=None``
    the configuration has always been in force (the rotation is projected
    backwards). Build an edit with :meth:`revise`, never by replacing layers.
    """

    timezone: str
    layers: tuple[Layer, ...] = ()
    id: str = ""
    name: str = ""
    effective_from: datetime | None = None
    history: tuple[Revision, ...] = ()
    overrides: tuple[Override, ...] = ()
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        current: Revision | None = None
        try:
            current = Revision(
                timezone=self.timezone,
                layers=self.layers,
                effective_from=self.effective_from,
            )
        except ScheduleError as exc:
            errors.extend(exc.errors)
        sid = coerce.text(self.id, "id", errors, allow_empty=True)
        name = coerce.text(self.name, "name", errors, allow_empty=True)
        history = coerce.items(
            self.history,
            "history",
            errors,
            coerce.nested(Revision),
            max_items=10_000,
            required=False,
        )
        overrides = coerce.items(
            self.overrides,
            "overrides",
            errors,
            coerce.nested(Override),
            max_items=1_000_000,
            required=False,
        )
        if current is not None and history is not None:
            revisions = (*history, current)
            for i, rev in enumerate(revisions):
                where = "effective_from" if i == len(history) else f"history[{i}].effective_from"
                if i and rev.effective_from is None:
                    errors.append(FieldError(where, "required on every revision but the first"))
                elif (
                    i
                    and revisions[i - 1].effective_from is not None
                    and rev.effective_from is not None
                    and not revisions[i - 1].effective_from < rev.effective_from
                ):
                    errors.append(FieldError(where, "must be later than the previous revision's"))
        if overrides is not None:
            seen: set[str] = set()
            for i, o in enumerate(overrides):
                if o.id in seen:
                    errors.append(
                        FieldError(f"overrides[{i}].id", f"duplicate override id {o.id!r}")
                    )
                seen.add(o.id)
        if errors:
            raise ScheduleError(errors)
        assert current is not None and history is not None and overrides is not None
        coerce.set_fields(
            self,
            timezone=current.timezone,
            layers=current.layers,
            id=sid,
            name=name,
            effective_from=current.effective_from,
            history=history,
            overrides=overrides,
        )
        self._cache["revisions"] = (*history, current)

    @property
    def revisions(self) -> tuple[Revision, ...]:
        """Every configuration, oldest first; the last is the current one."""
        return self._cache["revisions"]

    def revision_at(self, at: datetime) -> Revision | None:
        """The configuration in force at ``at`` (None before the first one)."""
        found = None
        for rev in self.revisions:
            if rev.effective_from is None or rev.effective_from <= at:
                found = rev
        return found

    def revise(
        self,
        effective_from: datetime,
        *,
        layers: Sequence[Layer | Mapping[str, Any]] | None = None,
        timezone: str | None = None,
    ) -> Schedule:
        """A copy whose configuration changes at ``effective_from`` (normally "now").

        Shifts before ``effective_from`` keep the configuration that was in
        force then. Revisions effective at or after ``effective_from`` (edits
        scheduled for the future) are superseded and dropped. Unspecified
        parts (``layers`` or ``timezone``) carry over from the current revision.
        """
        errors: list[FieldError] = []
        at = coerce.aware(effective_from, "effective_from", errors)
        if errors:
            raise ScheduleError(errors)
        assert at is not None
        kept = tuple(r for r in self.revisions if r.effective_from is None or r.effective_from < at)
        return replace(
            self,
            timezone=self.timezone if timezone is None else timezone,
            layers=tuple(self.layers if layers is None else layers),
            effective_from=at,
            history=kept,
        )

    def with_overrides(self, overrides: Iterable[Override | Mapping[str, Any]]) -> Schedule:
        """A copy with these overrides instead of the current ones."""
        return replace(self, overrides=tuple(overrides))

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        overrides: Iterable[Override | Mapping[str, Any]] | None = None,
        strict: bool = True,
    ) -> Schedule:
        """Build from the SPEC's schedule object (plus optional ``history``/``effective_from``).

        ``overrides`` (rows of the overrides resource) may be passed apart
        from the schedule body. With ``strict=False`` unknown keys (``id``
        columns, ``oncall``, timestamps...) are ignored instead of refused.
        """
        extra = None if overrides is None else {"overrides": tuple(overrides)}
        return coerce.from_mapping(cls, data, ("timezone",), strict, extra=extra)  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (overrides included)."""
        return {
            "id": self.id,
            "name": self.name,
            "timezone": self.timezone,
            "layers": [layer.to_dict() for layer in self.layers],
            "effective_from": None
            if self.effective_from is None
            else self.effective_from.isoformat(),
            "history": [r.to_dict() for r in self.history],
            "overrides": [o.to_dict() for o in self.overrides],
        }
