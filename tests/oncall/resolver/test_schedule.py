"""Schedule types: construction from JSON shapes, normalisation, all errors at once."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.oncall.resolver import RotationType, Schedule, ScheduleError

SPEC_SCHEDULE = {
    "id": "sched-1",
    "name": "Platform",
    "timezone": "Europe/London",
    "layers": [
        {
            "name": "primary",
            "rotation": {
                "type": "weekly",
                "length": 1,
                "shift_seconds": None,
                "handoff": "2026-11-23T09:00",
                "participants": ["p1", "p2", "p1"],
            },
            "restrictions": [{"days": ["mon", "Tue", "friday"], "start": "09:00", "end": "17:00"}],
        },
        {
            "name": "nights",
            "rotation": {"type": "custom", "shift_seconds": 43200, "handoff": "2026-11-23T21:00"},
        },
    ],
}


def test_spec_json_round_trips() -> None:
    s = Schedule.from_dict(SPEC_SCHEDULE)
    assert s.layers[0].rotation.type is RotationType.WEEKLY
    assert s.layers[0].rotation.handoff == datetime(2026, 11, 23, 9)
    assert s.layers[0].rotation.participants == ("p1", "p2", "p1")  # repeats allowed, order kept
    assert s.layers[0].restrictions[0].days == ("mon", "tue", "fri")
    assert s.layers[1].rotation.participants == ()
    again = Schedule.from_dict(s.to_dict())
    assert again == s
    assert s.to_dict()["layers"][0]["rotation"]["handoff"] == "2026-11-23T09:00"


def test_every_field_error_is_reported_at_once_with_its_path() -> None:
    bad = {
        "timezone": "Mars/Olympus",
        "colour": "blue",
        "layers": [
            {
                "name": "",
                "rotation": {
                    "type": "fortnightly",
                    "handoff": "2026-11-23T09:00+01:00",
                    "length": 0,
                    "participants": ["ok", 7],
                },
                "restrictions": [{"days": ["mon", "someday"], "start": "9am", "end": "24:00"}],
            },
            {"name": "b", "rotation": {"type": "custom", "handoff": "2026-11-23T09:00"}},
            {"name": "b", "rotation": {"type": "daily", "handoff": "x", "shift_seconds": 60}},
        ],
        "overrides": [
            {"id": "o", "person_id": "p", "start": "2026-01-02T00:00Z", "end": "2026-01-01T00:00Z"}
        ],
    }
    with pytest.raises(ScheduleError) as caught:
        Schedule.from_dict(bad)
    fields = {e.field for e in caught.value.errors}
    assert fields >= {
        "timezone",
        "colour",
        "layers[0].name",
        "layers[0].rotation.type",
        "layers[0].rotation.handoff",
        "layers[0].rotation.length",
        "layers[0].rotation.participants[1]",
        "layers[0].restrictions[0].days[1]",
        "layers[0].restrictions[0].start",
        "layers[1].rotation.shift_seconds",
        "layers[2].rotation.handoff",
        "layers[2].rotation.shift_seconds",
        "overrides[0].end",
    }
    assert caught.value.to_details()[0].keys() == {"field", "message"}
    assert isinstance(caught.value, ValueError)


def test_duplicate_layer_names_and_override_ids_are_refused() -> None:
    layer = {"name": "x", "rotation": {"type": "daily", "handoff": "2026-01-01T09:00"}}
    with pytest.raises(ScheduleError, match=r"layers\[1\]\.name"):
        Schedule.from_dict({"timezone": "UTC", "layers": [layer, layer]})
    o = {"id": "o", "person_id": "p", "start": "2026-01-01T00:00Z", "end": "2026-01-02T00:00Z"}
    with pytest.raises(ScheduleError, match=r"overrides\[1\]\.id"):
        Schedule.from_dict({"timezone": "UTC"}, overrides=[o, o])


def test_revisions_must_move_forward() -> None:
    rev = {"timezone": "UTC", "layers": [], "effective_from": "2026-02-01T00:00Z"}
    with pytest.raises(ScheduleError, match="effective_from: must be later"):
        Schedule.from_dict(
            {"timezone": "UTC", "effective_from": "2026-01-01T00:00Z", "history": [rev]}
        )
    with pytest.raises(ScheduleError, match="effective_from: required"):
        Schedule.from_dict({"timezone": "UTC", "history": [rev]})
    s = Schedule.from_dict(
        {"timezone": "UTC", "effective_from": "2026-03-01T00:00Z", "history": [rev]}
    )
    assert [r.effective_from.month for r in s.revisions if r.effective_from] == [2, 3]


def test_revise_supersedes_future_dated_revisions() -> None:
    base = Schedule.from_dict({"timezone": "UTC"})
    future = base.revise(datetime.fromisoformat("2026-06-01T00:00Z"), timezone="Europe/Paris")
    now = future.revise(datetime.fromisoformat("2026-05-01T00:00Z"), timezone="Asia/Tokyo")
    assert [r.timezone for r in now.revisions] == ["UTC", "Asia/Tokyo"]
    with pytest.raises(ScheduleError, match="effective_from"):
        base.revise(datetime(2026, 5, 1))  # naive


def test_lenient_mode_ignores_unknown_keys() -> None:
    row = {**SPEC_SCHEDULE, "source_account_id": "primary", "oncall": None}
    with pytest.raises(ScheduleError, match="source_account_id: unknown field"):
        Schedule.from_dict(row)
    assert Schedule.from_dict(row, strict=False).id == "sched-1"
