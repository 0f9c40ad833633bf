"""The escalation engine (pure): steps fire on time, repeats, catch-up, plans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.oncall.escalation import engine
from services.oncall.escalation.engine import Contact, Person, Policy, State, Step, Target

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def policy(*delays: int, repeat: int = 0) -> Policy:
    return Policy(
        steps=tuple(
            Step(timedelta(minutes=d), (Target("person", f"p{i}"),)) for i, d in enumerate(delays)
        ),
        repeat=repeat,
    )


def fired(
    p: Policy, state: State | None, now: datetime
) -> tuple[State | None, list[tuple[int, int, datetime]]]:
    if state is None:
        return None, []
    new, steps = engine.advance(p, state, now)
    return new, [(f.step, f.loop, f.at) for f in steps]


def test_step_zero_fires_at_trigger_and_later_steps_after_their_delay() -> None:
    p = policy(15, 10)
    state, steps = fired(p, engine.start(T0), T0)
    assert steps == [(0, 0, T0)]
    assert state == State(1, 0, T0 + timedelta(minutes=15))
    assert fired(p, state, T0 + timedelta(minutes=14, seconds=59)) == (state, [])
    done, steps = fired(p, state, T0 + timedelta(minutes=15))
    assert steps == [(1, 0, T0 + timedelta(minutes=15))]
    assert done is None  # the last step of the last loop: exhausted


def test_repeat_starts_over_and_catch_up_fires_in_order() -> None:
    p = policy(5, 5, repeat=2)
    state, steps = fired(p, engine.start(T0), T0 + timedelta(hours=1))
    assert [(s, loop) for s, loop, _ in steps] == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
    assert [at for _, _, at in steps] == [T0 + timedelta(minutes=5 * i) for i in range(6)]
    assert state is None
    _, actions = engine.advance(p, engine.start(T0), T0 + timedelta(hours=1))
    assert [a.last for a in actions] == [False] * 5 + [True]


@settings(max_examples=60, deadline=None)
@given(
    delays=st.lists(st.integers(1, 60), min_size=1, max_size=4),
    repeat=st.integers(0, 3),
    jumps=st.lists(st.integers(0, 90), min_size=1, max_size=12),
)
def test_advancing_in_small_jumps_equals_one_big_jump(
    delays: list[int], repeat: int, jumps: list[int]
) -> None:
    p = policy(*delays, repeat=repeat)
    state: State | None = engine.start(T0)
    seen: list[tuple[int, int, datetime]] = []
    now = T0
    for jump in jumps:
        now += timedelta(minutes=jump)
        state, steps = fired(p, state, now)
        seen += steps
    final, all_at_once = fired(p, engine.start(T0), now)
    assert seen == all_at_once and state == final


def test_plan_resolves_schedules_dedupes_people_and_notes_problems() -> None:
    fire = engine.FireStep(
        step=0,
        loop=0,
        at=T0,
        targets=(
            Target("schedule", "primary"),
            Target("person", "ann"),
            Target("schedule", "empty"),
            Target("schedule", "gone"),
            Target("person", "mute"),
            Target("person", "ghost"),
        ),
        last=False,
    )
    people = {
        "ann": Person(
            "ann",
            (Contact("webhook", "https://h/a"), Contact("email", "a@x", timedelta(minutes=5))),
        ),
        "mute": Person("mute", ()),
    }
    oncall = {"primary": "ann", "empty": None, "gone": False}
    planned, notes = engine.plan("alert-1", fire, oncall=lambda s, _at: oncall[s], people=people)
    assert [(n.person_id, n.channel, n.not_before) for n in planned] == [
        ("ann", "webhook", T0),
        ("ann", "email", T0 + timedelta(minutes=5)),
    ]
    assert len({n.key for n in planned}) == 2
    assert [(n.kind, dict(n.details)) for n in notes] == [
        ("nobody_on_call", {"schedule_id": "empty"}),
        ("schedule_missing", {"schedule_id": "gone"}),
        ("no_contact_methods", {"person_id": "mute"}),
        ("person_missing", {"person_id": "ghost"}),
    ]
