"""Restriction semantics: whole days, OR-ing, 24:00, masks that cover the whole week."""

from __future__ import annotations

from datetime import timedelta

from services.oncall.resolver import Restriction, person_at, shifts
from services.oncall.resolver.restrictions import weekly_mask

from .helpers import layer, local, schedule

ZONE = "Europe/London"


def _on(restrictions: list[dict]) -> list[tuple[str, str]]:
    s = schedule(ZONE, layer("p", "weekly", "2026-06-01T00:00", ["a"], restrictions=restrictions))
    # 2026-06-01 is a Monday; one week.
    segs = shifts(s, local(ZONE, 2026, 6, 1), local(ZONE, 2026, 6, 8)).segments
    fmt = "%a %H:%M"
    return [
        (x.start.astimezone(local(ZONE, 2026, 1, 1).tzinfo).strftime(fmt),
         x.end.astimezone(local(ZONE, 2026, 1, 1).tzinfo).strftime(fmt))
        for x in segs
        if x.person_id
    ]  # fmt: skip


def test_start_equal_to_end_is_24_hours_from_start() -> None:
    assert _on([{"days": ["sat"], "start": "09:00", "end": "09:00"}]) == [
        ("Sat 09:00", "Sun 09:00")
    ]
    assert _on([{"days": ["wed"], "start": "00:00", "end": "00:00"}]) == [
        ("Wed 00:00", "Thu 00:00")
    ]


def test_end_24_00_is_the_next_midnight() -> None:
    assert _on([{"days": ["tue"], "start": "18:00", "end": "24:00"}]) == [
        ("Tue 18:00", "Wed 00:00")
    ]


def test_several_restrictions_are_or_ed_and_adjacent_windows_join() -> None:
    got = _on(
        [
            {"days": ["mon"], "start": "09:00", "end": "12:00"},
            {"days": ["mon"], "start": "12:00", "end": "13:00"},
            {"days": ["mon", "fri"], "start": "22:00", "end": "02:00"},
        ]
    )
    assert got == [
        ("Mon 09:00", "Mon 13:00"),
        ("Mon 22:00", "Tue 02:00"),
        ("Fri 22:00", "Sat 02:00"),
    ]


def test_a_sunday_night_window_crosses_into_monday_of_the_next_week() -> None:
    got = _on([{"days": ["sun"], "start": "20:00", "end": "08:00"}])
    # The range starts on a Monday: the previous Sunday's window reaches into it.
    assert got == [("Mon 00:00", "Mon 08:00"), ("Sun 20:00", "Mon 00:00")]


def test_masks_covering_the_whole_week_mean_always() -> None:
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert weekly_mask([Restriction(days=every_day, start="00:00", end="00:00")]) is None
    assert weekly_mask([Restriction(days=every_day, start="17:00", end="17:00")]) is None
    assert (
        weekly_mask(
            [
                Restriction(days=every_day, start="09:00", end="17:00"),
                Restriction(days=every_day, start="17:00", end="09:00"),
            ]
        )
        is None
    )
    assert weekly_mask([Restriction(days=every_day[:6], start="00:00", end="00:00")]) is not None
    s = schedule(
        ZONE,
        layer("p", "daily", "2026-06-01T00:00", ["a"],
              restrictions=[{"days": every_day, "start": "06:00", "end": "06:00"}]),
    )  # fmt: skip
    assert shifts(s, local(ZONE, 2026, 3, 1), local(ZONE, 2026, 4, 1)).coverage == 1.0


def test_restricted_layer_lets_the_next_layer_through() -> None:
    s = schedule(
        ZONE,
        layer("day", "daily", "2026-06-01T09:00", ["d"],
              restrictions=[{"days": ["mon"], "start": "09:00", "end": "17:00"}]),
        layer("rest", "weekly", "2026-06-01T09:00", ["r"]),
    )  # fmt: skip
    t = local(ZONE, 2026, 6, 1, 8, 59)
    got = [person_at(s, t + timedelta(minutes=m)) for m in (0, 1, 480, 481)]
    assert got == ["r", "d", "d", "r"]  # 08:59, 09:00, 16:59, 17:00
