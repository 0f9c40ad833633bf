"""Cases taken from real on-call bug trackers, each pinned to exact instants."""

from __future__ import annotations

from datetime import timedelta

from services.oncall.resolver import Override, oncall, person_at, shifts

from .helpers import layer, local, schedule, table, utc


def test_weekly_rotation_across_the_end_of_dst_has_no_gap_or_overlap() -> None:
    """grafana/oncall#5247: a weekly shift created by API (``start`` 2024-10-01T09:00,
    America/Chicago) showed a one-hour gap when DST ended on 2024-11-03 and a
    one-hour overlap when it began. Here the handoff stays Tuesday 09:00 local
    and the week containing the change is simply an hour longer (shorter in
    spring), with nobody missing and nobody doubled."""
    zone = "America/Chicago"
    s = schedule(zone, layer("primary", "weekly", "2024-10-01T09:00", ["u1", "u2"]))
    final = shifts(s, local(zone, 2024, 10, 22), local(zone, 2024, 11, 20))
    assert final.coverage == 1.0
    assert table(final.segments, zone) == [
        ("2024-10-22 00:00-0500", "2024-10-22 09:00-0500", "u1"),
        ("2024-10-22 09:00-0500", "2024-10-29 09:00-0500", "u2"),
        ("2024-10-29 09:00-0500", "2024-11-05 09:00-0600", "u1"),
        ("2024-11-05 09:00-0600", "2024-11-12 09:00-0600", "u2"),
        ("2024-11-12 09:00-0600", "2024-11-19 09:00-0600", "u1"),
        ("2024-11-19 09:00-0600", "2024-11-20 00:00-0600", "u2"),
    ]
    fall = final.segments[2]
    assert fall.end - fall.start == timedelta(days=7, hours=1)
    spring = shifts(s, local(zone, 2025, 3, 4, 9), local(zone, 2025, 3, 11, 9)).segments
    assert len(spring) == 1 and spring[0].end - spring[0].start == timedelta(days=7, hours=-1)


def test_an_override_covering_several_shifts_ends_exactly_at_its_end() -> None:
    """target/goalert#4362: an override spanning several shifts did not end when
    it should; the overridden shifts' end "moved with the clock" and the gaps
    between shifts were erased. Here the override is one segment ending exactly
    at its ``end``, the rotation resumes mid-shift, and an existing gap stays."""
    zone = "Europe/London"
    biz = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}]
    s = schedule(
        zone,
        layer("days", "daily", "2026-06-01T09:00", ["a", "b", "c"], restrictions=biz),
        overrides=[
            Override(
                id="cover",
                person_id="z",
                start=local(zone, 2026, 6, 1, 12),
                end=local(zone, 2026, 6, 3, 15, 30),
            )
        ],
    )
    final = shifts(s, local(zone, 2026, 6, 1, 9), local(zone, 2026, 6, 4, 9))
    assert table(final.segments, zone) == [
        ("2026-06-01 09:00+0100", "2026-06-01 12:00+0100", "a"),
        ("2026-06-01 12:00+0100", "2026-06-03 15:30+0100", "z"),
        ("2026-06-03 15:30+0100", "2026-06-03 17:00+0100", "c"),
        ("2026-06-03 17:00+0100", "2026-06-04 09:00+0100", None),
    ]
    now = oncall(s, local(zone, 2026, 6, 2, 20))
    assert (now.person, now.source, now.override_id) == ("z", "override", "cover")
    assert now.shift_end == local(zone, 2026, 6, 3, 15, 30)
    assert now.next is not None and now.next.person == "c"
    assert now.next.start == local(zone, 2026, 6, 3, 15, 30)
    # Ending inside a gap: the gap is back the instant the override ends.
    s2 = s.with_overrides(
        [
            Override(
                id="late",
                person_id="z",
                start=local(zone, 2026, 6, 1, 16),
                end=local(zone, 2026, 6, 1, 20),
            )
        ]
    )
    assert person_at(s2, local(zone, 2026, 6, 1, 19, 59)) == "z"
    assert person_at(s2, local(zone, 2026, 6, 1, 20)) is None


def test_a_replacing_override_never_leaves_two_people_on_call() -> None:
    """GoAlert once implemented a "replace" override as add + remove, so for a
    moment both people were on call. Here an override *is* a replacement: in
    its span the layer person does not appear at all, and overlapping
    overrides resolve to the latest created, the older one keeping the rest."""
    zone = "UTC"
    s = schedule(
        zone,
        layer("primary", "daily", "2026-01-01T00:00", ["alice"]),
        overrides=[
            Override(
                id="o1",
                person_id="bob",
                start=utc(2026, 2, 1, 10),
                end=utc(2026, 2, 1, 14),
                created_at=utc(2026, 1, 20),
            ),
            Override(
                id="o2",
                person_id="carol",
                start=utc(2026, 2, 1, 12),
                end=utc(2026, 2, 1, 16),
                created_at=utc(2026, 1, 25),
            ),
        ],
    )
    final = shifts(s, utc(2026, 2, 1, 8), utc(2026, 2, 1, 18))
    assert [(x.start.hour, x.end.hour, x.person_id, x.override_id) for x in final.segments] == [
        (8, 10, "alice", None),
        (10, 12, "bob", "o1"),
        (12, 16, "carol", "o2"),
        (16, 18, "alice", None),
    ]
    for seg in final.segments:  # exactly one person per instant, and never alice inside 10-16
        if seg.start < utc(2026, 2, 1, 16) and seg.end > utc(2026, 2, 1, 10):
            assert seg.person_id != "alice"
    # Created in the other order, the earlier-starting override wins its whole span.
    swapped = s.with_overrides(
        [
            Override(
                id="o1",
                person_id="bob",
                start=utc(2026, 2, 1, 10),
                end=utc(2026, 2, 1, 14),
                created_at=utc(2026, 1, 25),
            ),
            Override(
                id="o2",
                person_id="carol",
                start=utc(2026, 2, 1, 12),
                end=utc(2026, 2, 1, 16),
                created_at=utc(2026, 1, 20),
            ),
        ]
    )
    assert [
        (x.start.hour, x.person_id)
        for x in shifts(swapped, utc(2026, 2, 1, 8), utc(2026, 2, 1, 18)).segments
    ] == [(8, "alice"), (10, "bob"), (14, "carol"), (16, "alice")]
    # Same created_at: the higher sequence wins.
    tie = s.with_overrides(
        [
            Override(
                id="o1",
                person_id="bob",
                start=utc(2026, 2, 1, 10),
                end=utc(2026, 2, 1, 14),
                created_at=utc(2026, 1, 20),
                sequence=2,
            ),
            Override(
                id="o2",
                person_id="carol",
                start=utc(2026, 2, 1, 12),
                end=utc(2026, 2, 1, 16),
                created_at=utc(2026, 1, 20),
                sequence=1,
            ),
        ]
    )
    assert person_at(tie, utc(2026, 2, 1, 13)) == "bob"


def test_a_22_00_to_06_00_restriction_wraps_midnight() -> None:
    """Overnight restrictions are a classic (aws-solutions/instance-scheduler-on-aws#110,
    sleepypod/core#203: 22:00-06:00 rejected or cut at midnight). "mon 22:00-06:00"
    is Monday 22:00 to Tuesday 06:00, and only that night."""
    zone = "America/New_York"
    nights = [{"days": ["mon"], "start": "22:00", "end": "06:00"}]
    s = schedule(zone, layer("night", "weekly", "2026-05-04T09:00", ["owl"], restrictions=nights))
    # 2026-05-04 is a Monday.
    assert person_at(s, local(zone, 2026, 5, 4, 21, 59)) is None
    assert person_at(s, local(zone, 2026, 5, 4, 22, 0)) == "owl"
    assert person_at(s, local(zone, 2026, 5, 5, 0, 0)) == "owl"
    assert person_at(s, local(zone, 2026, 5, 5, 5, 59)) == "owl"
    assert person_at(s, local(zone, 2026, 5, 5, 6, 0)) is None
    assert person_at(s, local(zone, 2026, 5, 5, 22, 30)) is None  # Tuesday night is not Monday's
    assert person_at(s, local(zone, 2026, 5, 4, 1, 0)) is None  # Sunday night is not listed
    week = shifts(s, local(zone, 2026, 5, 4), local(zone, 2026, 5, 11)).segments
    assert [(x.person_id, x.end - x.start) for x in week if x.person_id] == [
        ("owl", timedelta(hours=8))
    ]


def test_reordering_participants_does_not_rewrite_past_shifts() -> None:
    """grafana/oncall#2863 review: changing a rotation "will change the historical
    shifts as well". Here an edit is a revision effective from "now": every
    shift before it is unchanged, and the new order applies from then on."""
    zone = "Europe/London"
    s = schedule(zone, layer("primary", "daily", "2026-01-05T09:00", ["a", "b", "c", "d"]))
    now = local(zone, 2026, 6, 15, 12)
    past_range = (now - timedelta(days=60), now)
    before = shifts(s, *past_range)
    edited = s.revise(
        now, layers=[layer("primary", "daily", "2026-01-05T09:00", ["d", "c", "b", "a"])]
    )
    assert shifts(edited, *past_range) == before
    assert (
        oncall(edited, now - timedelta(minutes=1)).person
        == oncall(s, now - timedelta(minutes=1)).person
    )
    # From "now" the new order applies: the current shift is cut at the edit.
    assert person_at(s, now) != person_at(edited, now)
    cut = oncall(edited, now)
    assert cut.shift_start == now
    assert oncall(edited, now - timedelta(minutes=1)).shift_end == now
    # A later edit keeps both earlier configurations for their own periods.
    later = now + timedelta(days=10)
    edited2 = edited.revise(later, timezone="America/New_York")
    assert shifts(edited2, *past_range) == before
    assert shifts(edited2, now, later) == shifts(edited, now, later)
    assert len(edited2.revisions) == 3
