"""Pure on-call schedule resolution: rotations, layers, restrictions, overrides, zones.

No I/O and no clock reads: the service layer loads a :class:`Schedule`
(``Schedule.from_dict``) and asks :func:`oncall`, :func:`shifts`,
:func:`next_handoff` or :func:`person_at`, always passing the instant(s).
See ``docs/schedules.md`` for the schedule types and their rules.
"""

from .errors import FieldError, ScheduleError
from .ical import to_ical
from .layers import DAYS, Layer, Restriction, Rotation, RotationType
from .resolve import (
    MAX_RANGE,
    SEARCH_HORIZON,
    FinalSchedule,
    Handoff,
    NextOnCall,
    OnCall,
    Segment,
    next_handoff,
    oncall,
    person_at,
    shifts,
)
from .schedule import Override, Revision, Schedule

__all__ = [
    "DAYS",
    "MAX_RANGE",
    "SEARCH_HORIZON",
    "FieldError",
    "FinalSchedule",
    "Handoff",
    "Layer",
    "NextOnCall",
    "OnCall",
    "Override",
    "Restriction",
    "Revision",
    "Rotation",
    "RotationType",
    "Schedule",
    "ScheduleError",
    "Segment",
    "next_handoff",
    "oncall",
    "person_at",
    "shifts",
    "to_ical",
]
