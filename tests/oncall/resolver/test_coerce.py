"""Field coercion: instants need an offset, wall times must not have one."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.oncall.resolver import Override, Rotation, ScheduleError


def test_timestamps_need_an_offset_and_handoff_must_not_have_one() -> None:
    with pytest.raises(ScheduleError, match="start: must include a UTC offset"):
        Override.from_dict(
            {"id": "o", "person_id": "p", "start": "2026-01-01T00:00", "end": "2026-01-02T00:00Z"}
        )
    with pytest.raises(ScheduleError, match="handoff"):
        Rotation(type="daily", handoff=datetime.fromisoformat("2026-01-01T09:00+00:00"))
