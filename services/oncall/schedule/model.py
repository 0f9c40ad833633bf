"""Schedule types: plain frozen dataclasses that normalise and validate themselves.

Every type accepts either already-typed values or the JSON shapes of the SPEC
(section 5): ``Rotation(type="daily", handoff="2026-11-23T09:00", ...)`` and
``Rotation(type=RotationType.DAILY, handoff=datetime(2026, 11, 23, 9), ...)``
build the same value. Like GoAlert's ``Normalize()``, construction gathers
*every* field error (nested ones with their path, e.g.
``layers[1].rotation.handoff``) and raises one :class:`ScheduleError`
carrying the list, so an API can answer 422 with all of them at once.

``from_dict`` is the strict entry point for JSON bodies: it also reports
missing and unknown keys. ``to_dict`` gives the JSON shape back.

A :class:`Schedule` is a sequence of configurations (:class:`Revision`), each
in force from its ``effective_from`` until the next one: editing a schedule
appends a revision (:meth:`Schedule.revise`) instead of changing the past.
The simple case is one revision: ``Schedule(timezone=..., layers=[...])``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DAYS",
    "FieldError",
    "Layer",
    "Override",
    "Restriction",
    "Revision",
    "Rotation",
    "RotationType",
    "Schedule",
    "ScheduleError",
]

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

MAX_LAYERS = 50
MAX_PARTICIPANTS = 1000
MAX_RESTRICTIONS = 50
MAX_LENGTH = 1000
MIN_SHIFT_SECONDS = 3600
MAX_SHIFT_SECONDS = 366 * 86_400
MAX_SHIFT = timedelta(days=3660)  # length × unit, whatever the rotation type
MAX_TEXT = 200
# Instants a schedule may mention or be asked about (tzdata is meaningless far out).
EARLIEST = datetime.fromisoformat("1900-01-01T00:00:00+00:00")
LATEST = datetime.fromisoformat("2500-01-01T00:00:00+00:00")


class FieldError(NamedTuple):
    """One validation problem: a dotted field path and a human message."""

    field: str
    message: str


class ScheduleError(ValueError):
    """Invalid schedule data or query; ``errors`` lists every problem found."""

    def __init__(self, errors: Iterable[FieldError | tuple[str, str]]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(FieldError(*e) for e in errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))

    def to_details(self) -> list[dict[str, str]]:
        """JSON-able list for the error envelope's ``details``."""
        return [{"field": e.field, "message": e.message} for e in self.errors]


class RotationType(StrEnum):
    """How a rotation's shifts are measured (see ``docs/schedules.md``)."""

    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    CUSTOM = "custom"


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


# ---------------------------------------------------------------------------
# Field coercion helpers: each returns the normalised value, or None after
# appending to ``errors``.
# ---------------------------------------------------------------------------
def _join(prefix: str, name: str) -> str:
    if not prefix:
        return name
    return f"{prefix}{name}" if name.startswith("[") else f"{prefix}.{name}"


def _nest(errors: list[FieldError], prefix: str, exc: ScheduleError) -> None:
    errors.extend(FieldError(_join(prefix, e.field), e.message) for e in exc.errors)


def _text(
    value: Any, name: str, errors: list[FieldError], *, allow_empty: bool = False
) -> str | None:
    if value is _MISSING:
        errors.append(FieldError(name, "field required"))
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, "must be a string"))
        return None
    value = value.strip()
    if not value and not allow_empty:
        errors.append(FieldError(name, "must not be empty"))
        return None
    if len(value) > MAX_TEXT:
        errors.append(FieldError(name, f"must be at most {MAX_TEXT} characters"))
        return None
    return value


def _integer(value: Any, name: str, errors: list[FieldError], lo: int, hi: int) -> int | None:
    if value is _MISSING:
        errors.append(FieldError(name, "field required"))
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(FieldError(name, "must be an integer"))
        return None
    if not lo <= value <= hi:
        errors.append(FieldError(name, f"must be between {lo} and {hi}"))
        return None
    return value


def _aware(value: Any, name: str, errors: list[FieldError]) -> datetime | None:
    """An aware datetime (or RFC 3339 string with an offset) within EARLIEST..LATEST."""
    if value is _MISSING:
        errors.append(FieldError(name, "field required"))
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            errors.append(FieldError(name, "must be an RFC 3339 timestamp"))
            return None
    if not isinstance(value, datetime):
        errors.append(FieldError(name, "must be a timestamp"))
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        errors.append(FieldError(name, "must include a UTC offset"))
        return None
    if not EARLIEST <= value < LATEST:
        errors.append(FieldError(name, "must be between 1900 and 2500"))
        return None
    return value


def _wall_datetime(value: Any, name: str, errors: list[FieldError]) -> datetime | None:
    """A naive local datetime (``2026-11-23T09:00``), no offset allowed."""
    if value is _MISSING:
        errors.append(FieldError(name, "field required"))
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            errors.append(FieldError(name, "must be a local date-time like 2026-11-23T09:00"))
            return None
    if not isinstance(value, datetime):
        errors.append(FieldError(name, "must be a local date-time like 2026-11-23T09:00"))
        return None
    if value.tzinfo is not None:
        errors.append(FieldError(name, "is a wall time in the schedule's zone: no UTC offset"))
        return None
    if not EARLIEST.replace(tzinfo=None) <= value < LATEST.replace(tzinfo=None):
        errors.append(FieldError(name, "must be between 1900 and 2500"))
        return None
    return value.replace(fold=0)


def _time_of_day(value: Any, name: str, errors: list[FieldError], *, allow_24: bool) -> time | None:
    """``HH:MM`` or ``HH:MM:SS`` (``24:00`` accepted as an end: the next midnight)."""
    if value is _MISSING:
        errors.append(FieldError(name, "field required"))
        return None
    if isinstance(value, time):
        if value.tzinfo is not None:
            errors.append(FieldError(name, "must be a wall time without offset"))
            return None
        return value.replace(fold=0)
    if not isinstance(value, str):
        errors.append(FieldError(name, "must be a time like 09:00"))
        return None
    if allow_24 and value in ("24:00", "24:00:00"):
        return time(0, 0)
    parts = value.split(":")
    if len(parts) in (2, 3) and all(len(p) == 2 and p.isdigit() for p in parts):
        h, m, s = (int(p) for p in (*parts, "00")[:3])
        if h < 24 and m < 60 and s < 60:
            return time(h, m, s)
    errors.append(FieldError(name, "must be a time like 09:00 (HH:MM or HH:MM:SS)"))
    return None


def _timezone(value: Any, name: str, errors: list[FieldError]) -> str | None:
    key = _text(value, name, errors)
    if key is None:
        return None
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        errors.append(FieldError(name, f"unknown IANA time zone {key!r}"))
        return None
    return key


def _items(
    value: Any,
    name: str,
    errors: list[FieldError],
    build: Callable[[Any, str, list[FieldError]], Any],
    *,
    max_items: int,
    required: bool = True,
) -> tuple[Any, ...] | None:
    """A list whose items are each built by ``build`` (errors keep the item index)."""
    if value is _MISSING:
        if required:
            errors.append(FieldError(name, "field required"))
            return None
        return ()
    if type(value) is not list and type(value) is not tuple:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
            errors.append(FieldError(name, "must be a list"))
            return None
        value = list(value)
    if len(value) > max_items:
        errors.append(FieldError(name, f"must have at most {max_items} items"))
        return None
    out = []
    ok = True
    for i, item in enumerate(value):
        built = build(item, f"{name}[{i}]", errors)
        ok = ok and built is not None
        out.append(built)
    return tuple(out) if ok else None


def _nested(cls: Any) -> Callable[[Any, str, list[FieldError]], Any]:
    """Builder for a nested type: accepts an instance or a mapping (via ``from_dict``)."""

    def build(value: Any, name: str, errors: list[FieldError]) -> Any:
        if type(value) is cls:
            return value
        if type(value) is not dict and not isinstance(value, Mapping):
            errors.append(FieldError(name, "must be an object"))
            return None
        try:
            return cls.from_dict(value)
        except ScheduleError as exc:
            _nest(errors, name, exc)
            return None

    return build


def _kwargs(
    cls: Any, data: Any, required: Sequence[str], strict: bool
) -> tuple[dict[str, Any], list[FieldError]]:
    """Constructor keywords from a mapping; missing required keys become _MISSING."""
    errors: list[FieldError] = []
    if type(data) is not dict and not isinstance(data, Mapping):
        return {}, [FieldError("", "must be an object")]
    names = _init_names(cls)
    kwargs = {k: data[k] for k in names if k in data}
    if strict and len(kwargs) < len(data):
        errors.extend(FieldError(str(k), "unknown field") for k in data if k not in names)
    for k in required:
        kwargs.setdefault(k, _MISSING)
    return kwargs, errors


_INIT_NAMES: dict[type, frozenset[str]] = {}


def _init_names(cls: type) -> frozenset[str]:
    names = _INIT_NAMES.get(cls)
    if names is None:
        names = _INIT_NAMES[cls] = frozenset(f.name for f in fields(cls) if f.init)
    return names


def _from_dict(cls: Any, data: Any, required: Sequence[str], strict: bool) -> Any:
    """Strict construction from a mapping: key errors and field errors reported together."""
    kwargs, errors = _kwargs(cls, data, required, strict)
    if not kwargs and errors and errors[0].field == "":
        raise ScheduleError(errors)
    try:
        built = cls(**kwargs)
    except ScheduleError as exc:
        raise ScheduleError([*exc.errors, *errors]) from None
    if errors:
        raise ScheduleError(errors)
    return built


def _set(obj: object, **values: Any) -> None:
    for k, v in values.items():
        object.__setattr__(obj, k, v)


def _fmt_time(t: time) -> str:
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")


def _fmt_wall(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds" if dt.second or dt.microsecond else "minutes")


# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Restriction:
    """When a layer may be on call: these weekdays, from ``start`` to ``end`` local time.

    ``end <= start`` crosses midnight (``22:00``-``06:00`` on ``mon`` is Monday
    22:00 to Tuesday 06:00); ``start == end`` is a whole 24 hours from
    ``start``. Days are normalised to lower-case three-letter names in week
    order, duplicates dropped.
    """

    days: tuple[str, ...]
    start: time
    end: time

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        days = _days(self.days, "days", errors)
        start = _time_of_day(self.start, "start", errors, allow_24=False)
        end = _time_of_day(self.end, "end", errors, allow_24=True)
        if errors:
            raise ScheduleError(errors)
        _set(self, days=days, start=start, end=end)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = True) -> Restriction:
        """Build from ``{"days": [...], "start": "09:00", "end": "17:00"}``."""
        return _from_dict(cls, data, ("days", "start", "end"), strict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {"days": list(self.days), "start": _fmt_time(self.start), "end": _fmt_time(self.end)}


def _days(value: Any, name: str, errors: list[FieldError]) -> tuple[str, ...] | None:
    def one(item: Any, item_name: str, errs: list[FieldError]) -> str | None:
        key = item.strip().lower() if isinstance(item, str) else None
        if key in DAYS:
            return key
        if key in _FULL_DAYS:
            return DAYS[_FULL_DAYS.index(key)]
        errs.append(FieldError(item_name, f"must be one of {', '.join(DAYS)}"))
        return None

    days = _items(value, name, errors, one, max_items=14)
    if days is None:
        return None
    if not days:
        errors.append(FieldError(name, "must name at least one day"))
        return None
    return tuple(d for d in DAYS if d in days)


_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Rotation:
    """Participants taking turns of ``length`` units from the ``handoff`` wall time.

    Units: ``hourly`` one hour and ``custom`` ``shift_seconds`` (both measured
    in elapsed time), ``daily`` one calendar day and ``weekly`` seven calendar
    days (measured in the zone's wall time, so handoffs keep their local
    time across DST). The rotation extends backwards before ``handoff`` as well
    as forwards (the handoff is an anchor, not a start; a configuration starts
    at its revision's ``effective_from``). A person may appear several times;
    an empty rotation has nobody on call.
    """

    type: RotationType
    handoff: datetime
    participants: tuple[str, ...] = ()
    length: int = 1
    shift_seconds: int | None = None

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        kind: RotationType | None
        try:
            kind = RotationType(self.type)
        except ValueError:
            kind = None
            errors.append(
                FieldError("type", f"must be one of {', '.join(t.value for t in RotationType)}")
            )
        handoff = _wall_datetime(self.handoff, "handoff", errors)
        participants = _items(
            self.participants, "participants", errors, _participant, max_items=MAX_PARTICIPANTS
        )
        length = _integer(self.length, "length", errors, 1, MAX_LENGTH)
        shift_seconds = self.shift_seconds
        if kind is RotationType.CUSTOM:
            shift_seconds = _integer(
                _MISSING if shift_seconds is None else shift_seconds,
                "shift_seconds",
                errors,
                MIN_SHIFT_SECONDS,
                MAX_SHIFT_SECONDS,
            )
        elif shift_seconds is not None:
            errors.append(FieldError("shift_seconds", "only a custom rotation has shift_seconds"))
        if (
            kind is not None
            and length is not None
            and (kind is not RotationType.CUSTOM or shift_seconds)
        ):
            unit = _unit_seconds(kind, shift_seconds)
            if timedelta(seconds=unit * length) > MAX_SHIFT:
                errors.append(FieldError("length", "a shift may last at most 3660 days"))
        if errors:
            raise ScheduleError(errors)
        _set(
            self,
            type=kind,
            handoff=handoff,
            participants=participants,
            length=length,
            shift_seconds=shift_seconds,
        )

    @property
    def shift(self) -> timedelta:
        """Nominal length of one shift (day-based shifts may differ by a DST change)."""
        return timedelta(seconds=_unit_seconds(self.type, self.shift_seconds) * self.length)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = True) -> Rotation:
        """Build from the SPEC's rotation object."""
        return _from_dict(cls, data, ("type", "handoff"), strict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {
            "type": self.type.value,
            "length": self.length,
            "shift_seconds": self.shift_seconds,
            "handoff": _fmt_wall(self.handoff),
            "participants": list(self.participants),
        }


def _unit_seconds(kind: RotationType, shift_seconds: int | None) -> int:
    if kind is RotationType.HOURLY:
        return 3600
    if kind is RotationType.DAILY:
        return 86_400
    if kind is RotationType.WEEKLY:
        return 7 * 86_400
    return int(shift_seconds or 0)


def _participant(value: Any, name: str, errors: list[FieldError]) -> str | None:
    return _text(value, name, errors)


@dataclass(frozen=True, slots=True)
class Layer:
    """A named rotation with optional restrictions (none = always allowed)."""

    name: str
    rotation: Rotation
    restrictions: tuple[Restriction, ...] = ()

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        name = _text(self.name, "name", errors)
        rotation = _nested(Rotation)(self.rotation, "rotation", errors)
        restrictions = _items(
            self.restrictions,
            "restrictions",
            errors,
            _nested(Restriction),
            max_items=MAX_RESTRICTIONS,
        )
        if errors:
            raise ScheduleError(errors)
        _set(self, name=name, rotation=rotation, restrictions=restrictions)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = True) -> Layer:
        """Build from ``{"name", "rotation": {...}, "restrictions": [...]}``."""
        return _from_dict(cls, data, ("name", "rotation"), strict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {
            "name": self.name,
            "rotation": self.rotation.to_dict(),
            "restrictions": [r.to_dict() for r in self.restrictions],
        }


def _layers(value: Any, name: str, errors: list[FieldError]) -> tuple[Layer, ...] | None:
    layers = _items(value, name, errors, _nested(Layer), max_items=MAX_LAYERS, required=False)
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
        timezone = _timezone(self.timezone, "timezone", errors)
        layers = _layers(self.layers, "layers", errors)
        effective_from = (
            None
            if self.effective_from is None
            else _aware(self.effective_from, "effective_from", errors)
        )
        if errors:
            raise ScheduleError(errors)
        _set(self, timezone=timezone, layers=layers, effective_from=effective_from)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = True) -> Revision:
        """Build from ``{"timezone", "layers", "effective_from"}``."""
        return _from_dict(cls, data, ("timezone",), strict)

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
        oid = _text(self.id, "id", errors)
        person = _text(self.person_id, "person_id", errors)
        start = _aware(self.start, "start", errors)
        end = _aware(self.end, "end", errors)
        created_at = (
            None if self.created_at is None else _aware(self.created_at, "created_at", errors)
        )
        sequence = _integer(self.sequence, "sequence", errors, -(2**63), 2**63 - 1)
        reason = (
            "" if self.reason is None else _text(self.reason, "reason", errors, allow_empty=True)
        )
        schedule_id = (
            None if self.schedule_id is None else _text(self.schedule_id, "schedule_id", errors)
        )
        if start is not None and end is not None and not start < end:
            errors.append(FieldError("end", "must be after start"))
        if errors:
            raise ScheduleError(errors)
        _set(
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
        return _from_dict(cls, data, ("id", "person_id", "start", "end"), strict)

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
        sid = _text(self.id, "id", errors, allow_empty=True)
        name = _text(self.name, "name", errors, allow_empty=True)
        history = _items(
            self.history, "history", errors, _nested(Revision), max_items=10_000, required=False
        )
        overrides = _items(
            self.overrides,
            "overrides",
            errors,
            _nested(Override),
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
        _set(
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
        at = _aware(effective_from, "effective_from", errors)
        if errors:
            raise ScheduleError(errors)
        assert at is not None
        kept = tuple(r for r in self.revisions if r.effective_from is None or r.effective_from < at)
        return Schedule(
            timezone=self.timezone if timezone is None else timezone,
            layers=tuple(self.layers if layers is None else layers),  # type: ignore[arg-type]
            id=self.id,
            name=self.name,
            effective_from=at,
            history=kept,
            overrides=self.overrides,
        )

    def with_overrides(self, overrides: Iterable[Override | Mapping[str, Any]]) -> Schedule:
        """A copy with these overrides instead of the current ones."""
        return Schedule(
            timezone=self.timezone,
            layers=self.layers,
            id=self.id,
            name=self.name,
            effective_from=self.effective_from,
            history=self.history,
            overrides=tuple(overrides),  # type: ignore[arg-type]
        )

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
        kwargs, errors = _kwargs(cls, data, ("timezone",), strict)
        if overrides is not None:
            kwargs["overrides"] = tuple(overrides)
        if not isinstance(data, Mapping):
            raise ScheduleError(errors)
        try:
            built = cls(**kwargs)
        except ScheduleError as exc:
            raise ScheduleError([*exc.errors, *errors]) from None
        if errors:
            raise ScheduleError(errors)
        return built

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
