"""Pure parts: the escalation engine, planning, backoff, rate limits, destinations, outcomes."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.oncall.delivery.channels import classify
from services.oncall.delivery.destinations import DestinationPolicy
from services.oncall.delivery.outbox import RetryPolicy
from services.oncall.delivery.ratelimit import Limit, take
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


def test_backoff_is_exponential_capped_and_jittered_by_the_given_rng() -> None:
    retry = RetryPolicy(base=timedelta(seconds=30), cap=timedelta(minutes=10))
    a = [retry.delay(n, random.Random(3)) for n in range(1, 8)]
    b = [retry.delay(n, random.Random(3)) for n in range(1, 8)]
    assert a == b  # the injected RNG decides the jitter
    for n, delay in enumerate(a, start=1):
        raw = min(timedelta(minutes=10), timedelta(seconds=30 * 2 ** (n - 1)))
        assert raw / 2 <= delay <= raw
    assert retry.delay(1, random.Random(0), retry_after=120) >= timedelta(seconds=120)


def test_token_bucket() -> None:
    limit = Limit(max=2, per_seconds=60)
    first = take(limit, None, None, T0)
    second = take(limit, first.tokens, first.updated_at, T0)
    third = take(limit, second.tokens, second.updated_at, T0)
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert third.wait == timedelta(seconds=30)
    later = take(limit, third.tokens, third.updated_at, T0 + timedelta(seconds=30))
    assert later.allowed
    assert Limit.of("email", None) == Limit(10, 600)
    assert Limit.of("webhook", {"max": 5, "per_seconds": 1}) == Limit(5, 1)


@pytest.mark.parametrize(
    ("url", "allowed", "local", "ok"),
    [
        ("https://hooks.example.com/x", [], False, True),
        ("http://8.8.8.8/x", [], False, True),
        ("http://127.0.0.1:9/x", [], False, False),
        ("http://127.0.0.1:9/x", [], True, True),
        ("http://localhost/x", [], False, False),
        ("http://localhost/x", [], True, True),
        ("http://[::1]/x", [], False, False),
        ("http://[::ffff:10.0.0.1]/x", [], False, False),
        ("http://10.1.2.3/x", [], False, False),
        ("http://10.1.2.3/x", ["10.0.0.0/8"], False, True),
        ("http://169.254.169.254/latest/meta-data", [], True, False),
        ("http://192.168.1.5/x", ["192.168.1.5"], False, True),
        ("http://internal.corp/x", ["internal.corp"], False, True),
        ("http://0.0.0.0/x", [], False, False),
        ("ftp://example.com/x", [], False, False),
        ("http://user:pw@example.com/x", [], False, False),
        ("http:///nohost", [], False, False),
    ],
)
def test_destination_policy(url: str, allowed: list[str], local: bool, ok: bool) -> None:
    policy = DestinationPolicy.from_settings(allowed, local_mode=local)
    assert (policy.literal_problem(url) is None) is ok


async def test_resolved_names_are_checked_on_every_address() -> None:
    strict = DestinationPolicy.from_settings([], local_mode=False)
    problem = await strict.resolved_problem("http://localhost./x")
    assert problem is not None and "ONCALL_ALLOWED_DESTINATIONS" in problem
    listed = DestinationPolicy.from_settings(["127.0.0.0/8", "::1/128"], local_mode=False)
    assert listed.address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert await listed.resolved_problem("http://127.0.0.1:1/x") is None
    assert "cannot resolve" in (
        await strict.resolved_problem("http://no-such-host.invalid/x") or ""
    )


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "sent"),
        (204, "sent"),
        (301, "permanent"),
        (400, "permanent"),
        (404, "permanent"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_http_outcomes(status: int, outcome: str) -> None:
    result = classify(httpx.Response(status, headers={"Retry-After": "7"}))
    assert result.outcome == outcome and result.status_code == status
    if status in (429, 503):
        assert result.retry_after == 7.0
