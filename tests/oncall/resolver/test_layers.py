"""Layer types: rotations and restrictions from typed values or JSON shapes, their limits."""

from __future__ import annotations

from datetime import datetime, time

import pytest

from services.oncall.resolver import (
    Layer,
    Restriction,
    Rotation,
    RotationType,
    ScheduleError,
)


def test_typed_and_json_construction_agree() -> None:
    typed = Layer(
        name="primary",
        rotation=Rotation(
            type=RotationType.DAILY, handoff=datetime(2026, 1, 1, 9), participants=("a",)
        ),
        restrictions=(Restriction(days=("sat",), start=time(22), end=time(6)),),
    )
    loose = Layer.from_dict(
        {
            "name": "primary",
            "rotation": {"type": "daily", "handoff": "2026-01-01T09:00:00", "participants": ["a"]},
            "restrictions": [{"days": ["saturday"], "start": "22:00", "end": "06:00"}],
        }
    )
    assert typed == loose


def test_restriction_times() -> None:
    r = Restriction.from_dict({"days": ["sun", "mon", "mon"], "start": "00:00", "end": "24:00"})
    assert r.days == ("mon", "sun") and r.end == time(0)
    assert Restriction.from_dict(
        {"days": ["mon"], "start": "08:30:15", "end": "09:00"}
    ).start == time(8, 30, 15)
    for bad in ("24:00", "7:00", "12:60", 900):
        with pytest.raises(ScheduleError, match="start"):
            Restriction.from_dict({"days": ["mon"], "start": bad, "end": "09:00"})
    with pytest.raises(ScheduleError, match="at least one day"):
        Restriction.from_dict({"days": [], "start": "09:00", "end": "10:00"})


def test_rotation_limits() -> None:
    with pytest.raises(ScheduleError, match="shift_seconds: must be between"):
        Rotation(type="custom", handoff="2026-01-01T00:00", shift_seconds=60)
    with pytest.raises(ScheduleError, match="length: a shift may last at most"):
        Rotation(type="weekly", handoff="2026-01-01T00:00", length=1000)
    with pytest.raises(ScheduleError, match="length: must be an integer"):
        Rotation(type="daily", handoff="2026-01-01T00:00", length=True)
    assert (
        Rotation(
            type="custom", handoff="2026-01-01T00:00", shift_seconds=5400, length=2
        ).shift.seconds
        == 10800
    )
