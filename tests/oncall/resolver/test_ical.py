"""iCalendar export of the final schedule."""

from __future__ import annotations

from datetime import timedelta

from icalendar import Calendar

from services.oncall.resolver import Override, shifts, to_ical

from .helpers import layer, schedule, utc

STAMP = utc(2026, 1, 1)


def _events(data: bytes) -> list:
    return list(Calendar.from_ical(data).walk("VEVENT"))


def test_one_event_per_on_call_segment_with_the_person_as_summary() -> None:
    s = schedule(
        "Europe/London",
        layer(
            "day",
            "daily",
            "2026-06-01T09:00",
            ["a", "b"],
            restrictions=[
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
            ],
        ),
        overrides=[
            Override(id="o1", person_id="z", start=utc(2026, 6, 2, 9), end=utc(2026, 6, 2, 10))
        ],
    )
    since, until = utc(2026, 6, 1), utc(2026, 6, 8)
    final = shifts(s, since, until)
    events = _events(to_ical(s, since, until, dtstamp=STAMP, names={"a": "Ann"}))
    on_call = [x for x in final.segments if x.person_id]
    assert len(events) == len(on_call)
    assert [str(e["summary"]) for e in events] == [
        {"a": "Ann"}.get(x.person_id, x.person_id) for x in on_call
    ]
    assert [e.decoded("dtstart") for e in events] == [x.start for x in on_call]
    assert [e.decoded("dtend") for e in events] == [x.end for x in on_call]
    assert all(e.decoded("dtstamp") == STAMP for e in events)
    assert len({str(e["uid"]) for e in events}) == len(events)
    (z,) = [e for e in events if str(e["summary"]) == "z"]
    assert "override o1" in str(z["description"])
    assert (z.decoded("dtstart"), z.decoded("dtend")) == (utc(2026, 6, 2, 9), utc(2026, 6, 2, 10))


def test_uids_and_bounds_do_not_change_when_the_window_slides() -> None:
    s = schedule("UTC", layer("p", "weekly", "2026-06-01T09:00", ["a", "b", "c"]))
    first = _events(to_ical(s, utc(2026, 6, 3), utc(2026, 6, 20), dtstamp=STAMP))
    second = _events(
        to_ical(s, utc(2026, 6, 5), utc(2026, 6, 25), dtstamp=STAMP + timedelta(days=1))
    )
    by_uid = {str(e["uid"]): (e.decoded("dtstart"), e.decoded("dtend")) for e in second}
    # The week cut by the window's start is exported whole, under the same UID.
    assert first[0].decoded("dtstart") == utc(2026, 6, 1, 9)
    for e in first:
        assert by_uid[str(e["uid"])] == (e.decoded("dtstart"), e.decoded("dtend"))
