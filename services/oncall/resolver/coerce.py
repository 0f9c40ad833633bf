"""Field coercion for the schedule types: each helper normalises one value or records why not.

Every helper takes the raw value, its field name and the error list; it
returns the normalised value, or None after appending a :class:`FieldError`,
so a type's ``__post_init__`` gathers *every* problem before raising one
:class:`ScheduleError`. ``from_mapping`` is the strict entry point for JSON
bodies (missing and unknown keys reported with the field errors).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import FieldError, ScheduleError

MAX_TEXT = 200
# Instants a schedule may mention or be asked about (tzdata is meaningless far out).
EARLIEST = datetime.fromisoformat("1900-01-01T00:00:00+00:00")
LATEST = datetime.fromisoformat("2500-01-01T00:00:00+00:00")


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def _join(prefix: str, name: str) -> str:
    if not prefix:
        return name
    return f"{prefix}{name}" if name.startswith("[") else f"{prefix}.{name}"


def _nest(errors: list[FieldError], prefix: str, exc: ScheduleError) -> None:
    errors.extend(FieldError(_join(prefix, e.field), e.message) for e in exc.errors)


def text(
    value: Any, name: str, errors: list[FieldError], *, allow_empty: bool = False
) -> str | None:
    if value is MISSING:
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


def integer(value: Any, name: str, errors: list[FieldError], lo: int, hi: int) -> int | None:
    if value is MISSING:
        errors.append(FieldError(name, "field required"))
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(FieldError(name, "must be an integer"))
        return None
    if not lo <= value <= hi:
        errors.append(FieldError(name, f"must be between {lo} and {hi}"))
        return None
    return value


def _datetime(
    value: Any, name: str, errors: list[FieldError], *, unparsed: str, wrong_type: str
) -> datetime | None:
    """A datetime, or an ISO 8601 string parsed into one (offset or not)."""
    if value is MISSING:
        errors.append(FieldError(name, "field required"))
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            errors.append(FieldError(name, unparsed))
            return None
    if not isinstance(value, datetime):
        errors.append(FieldError(name, wrong_type))
        return None
    return value


def aware(value: Any, name: str, errors: list[FieldError]) -> datetime | None:
    """An aware datetime (or RFC 3339 string with an offset) within EARLIEST..LATEST."""
    value = _datetime(
        value,
        name,
        errors,
        unparsed="must be an RFC 3339 timestamp",
        wrong_type="must be a timestamp",
    )
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        errors.append(FieldError(name, "must include a UTC offset"))
        return None
    if not EARLIEST <= value < LATEST:
        errors.append(FieldError(name, "must be between 1900 and 2500"))
        return None
    return value


def wall_datetime(value: Any, name: str, errors: list[FieldError]) -> datetime | None:
    """A naive local datetime (``2026-11-23T09:00``), no offset allowed."""
    expected = "must be a local date-time like 2026-11-23T09:00"
    value = _datetime(value, name, errors, unparsed=expected, wrong_type=expected)
    if value is None:
        return None
    if value.tzinfo is not None:
        errors.append(FieldError(name, "is a wall time in the schedule's zone: no UTC offset"))
        return None
    if not EARLIEST.replace(tzinfo=None) <= value < LATEST.replace(tzinfo=None):
        errors.append(FieldError(name, "must be between 1900 and 2500"))
        return None
    return value.replace(fold=0)


def time_of_day(value: Any, name: str, errors: list[FieldError], *, allow_24: bool) -> time | None:
    """``HH:MM`` or ``HH:MM:SS`` (``24:00`` accepted as an end: the next midnight)."""
    if value is MISSING:
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


def timezone(value: Any, name: str, errors: list[FieldError]) -> str | None:
    key = text(value, name, errors)
    if key is None:
        return None
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        errors.append(FieldError(name, f"unknown IANA time zone {key!r}"))
        return None
    return key


def items(
    value: Any,
    name: str,
    errors: list[FieldError],
    build: Callable[[Any, str, list[FieldError]], Any],
    *,
    max_items: int,
    required: bool = True,
) -> tuple[Any, ...] | None:
    """A list whose items are each built by ``build`` (errors keep the item index)."""
    if value is MISSING:
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


def nested(cls: Any) -> Callable[[Any, str, list[FieldError]], Any]:
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


def constructor_kwargs(
    cls: Any, data: Any, required: Sequence[str], strict: bool
) -> tuple[dict[str, Any], list[FieldError]]:
    """Constructor keywords from a mapping; missing required keys become MISSING."""
    errors: list[FieldError] = []
    if type(data) is not dict and not isinstance(data, Mapping):
        return {}, [FieldError("", "must be an object")]
    names = _init_names(cls)
    kwargs = {k: data[k] for k in names if k in data}
    if strict and len(kwargs) < len(data):
        errors.extend(FieldError(str(k), "unknown field") for k in data if k not in names)
    for k in required:
        kwargs.setdefault(k, MISSING)
    return kwargs, errors


_INIT_NAMES: dict[type, frozenset[str]] = {}


def _init_names(cls: type) -> frozenset[str]:
    names = _INIT_NAMES.get(cls)
    if names is None:
        names = _INIT_NAMES[cls] = frozenset(f.name for f in fields(cls) if f.init)
    return names


def from_mapping(
    cls: Any,
    data: Any,
    required: Sequence[str],
    strict: bool,
    *,
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """Strict construction from a mapping: key errors and field errors reported together.

    `extra` keywords (values given apart from the mapping) are passed as they are.
    """
    kwargs, errors = constructor_kwargs(cls, data, required, strict)
    if type(data) is not dict and not isinstance(data, Mapping):
        raise ScheduleError(errors)
    kwargs.update(extra or {})
    try:
        built = cls(**kwargs)
    except ScheduleError as exc:
        raise ScheduleError([*exc.errors, *errors]) from None
    if errors:
        raise ScheduleError(errors)
    return built


def set_fields(obj: object, **values: Any) -> None:
    for k, v in values.items():
        object.__setattr__(obj, k, v)


def fmt_time(t: time) -> str:
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")


def fmt_wall(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds" if dt.second or dt.microsecond else "minutes")
