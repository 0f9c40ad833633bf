"""The escalation engine: pure functions of a policy, a state and an instant.

An open alert's escalation state says which step fires next, in which loop,
and when. :func:`advance` fires every step due at or before ``now`` (catching
up in order if the worker was away) and returns the new state (None once the
last step of the last loop has fired) and the actions to carry out. It reads
no clock and does no I/O; :func:`plan` turns a fired step into notifications
given who is on call (a callable) and the people's contact methods.

Timing: step ``i`` fires at ``F_i``; step ``i+1`` at ``F_i + steps[i].delay``
unless acknowledged; after the last step the policy starts over at step 0
while ``loop < repeat``. A contact method with ``delay_minutes`` is used that
long after its step fired.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

TargetType = Literal["person", "schedule"]


@dataclass(frozen=True, slots=True)
class Target:
    type: TargetType
    id: str


@dataclass(frozen=True, slots=True)
class Step:
    delay: timedelta
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    steps: tuple[Step, ...]
    repeat: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        """From the stored policy (`{"steps": [{"delay_minutes", "targets"}], "repeat"}`)."""
        return cls(
            steps=tuple(
                Step(
                    delay=timedelta(minutes=int(s["delay_minutes"])),
                    targets=tuple(Target(t["type"], t["id"]) for t in s["targets"]),
                )
                for s in data["steps"]
            ),
            repeat=int(data.get("repeat", 0)),
        )


@dataclass(frozen=True, slots=True)
class State:
    """The next step to fire, its loop (0 = first pass) and when."""

    step: int
    loop: int
    at: datetime


@dataclass(frozen=True, slots=True)
class FireStep:
    """Notify the targets of `step` (in `loop`) as of instant `at`."""

    step: int
    loop: int
    at: datetime
    targets: tuple[Target, ...]
    last: bool
    """True when no step will follow (the escalation is exhausted after it)."""


def start(triggered_at: datetime) -> State:
    """The state of a newly triggered alert: step 0 is due at once."""
    return State(step=0, loop=0, at=triggered_at)


def advance(policy: Policy, state: State, now: datetime) -> tuple[State | None, list[FireStep]]:
    """Fire every step due at or before `now`; return the next state and the fired steps."""
    fired: list[FireStep] = []
    current: State | None = state
    while current is not None and current.at <= now:
        step = policy.steps[current.step]
        following = current.at + step.delay
        if current.step + 1 < len(policy.steps):
            nxt: State | None = State(current.step + 1, current.loop, following)
        elif current.loop < policy.repeat:
            nxt = State(0, current.loop + 1, following)
        else:
            nxt = None
        fired.append(FireStep(current.step, current.loop, current.at, step.targets, nxt is None))
        current = nxt
    return current, fired


# ---------------------------------------------------------------------------
# Planning notifications for a fired step
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Contact:
    channel: Literal["email", "webhook", "slack"]
    destination: str
    delay: timedelta = timedelta(0)
    rate_limit: Mapping[str, int] | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    contacts: tuple[Contact, ...]

    @classmethod
    def from_json(
        cls,
        person_id: str,
        methods: Sequence[Mapping[str, Any]],
        rules: Sequence[Mapping[str, Any]] | None = None,
        severity: str | None = None,
    ) -> Person:
        """The contacts for an alert of `severity`: the person's notification rules for
        that severity (each a contact method and its own delay, PagerDuty's urgency
        rules) when there are any, else every contact method after its delay_minutes."""
        by_id = {m.get("id"): m for m in methods}
        chosen = [
            (by_id[r["contact_method_id"]], int(r.get("delay_minutes", 0)))
            for r in rules or ()
            if r.get("severity") == severity and r.get("contact_method_id") in by_id
        ]
        if not chosen:
            chosen = [(m, int(m.get("delay_minutes", 0))) for m in methods]
        return cls(
            person_id,
            tuple(
                Contact(
                    channel=m["type"],
                    destination=m.get("address") or m.get("url") or "",
                    delay=timedelta(minutes=delay),
                    rate_limit=m.get("rate_limit"),
                    id=m.get("id"),
                )
                for m, delay in chosen
            ),
        )


@dataclass(frozen=True, slots=True)
class PlannedNotification:
    key: str
    """Deterministic per (alert, loop, step, person, contact): queued at most once."""
    person_id: str
    channel: str
    destination: str
    not_before: datetime
    step: int
    loop: int
    rate_limit: Mapping[str, int] | None
    contact_method_id: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """Something the timeline should say about a fired step (nobody on call...)."""

    kind: str
    details: Mapping[str, Any]


def plan(
    alert_id: str,
    fire: FireStep,
    *,
    oncall: Callable[[str, datetime], str | None | Literal[False]],
    people: Mapping[str, Person],
) -> tuple[list[PlannedNotification], list[Note]]:
    """The notifications of a fired step and what to note about it.

    `oncall(schedule_id, at)` gives the person on call, None in a gap, or
    False when the schedule no longer exists. Each person is notified once
    per step even when targeted directly and through a schedule.
    """
    notes: list[Note] = []
    persons: list[str] = []
    for target in fire.targets:
        if target.type == "person":
            person_id: str | None = target.id
        else:
            found = oncall(target.id, fire.at)
            if found is False:
                notes.append(Note("schedule_missing", {"schedule_id": target.id}))
                continue
            if found is None:
                notes.append(Note("nobody_on_call", {"schedule_id": target.id}))
                continue
            person_id = found
        if person_id not in persons:
            persons.append(person_id)
    planned: list[PlannedNotification] = []
    for person_id in persons:
        person = people.get(person_id)
        if person is None:
            notes.append(Note("person_missing", {"person_id": person_id}))
            continue
        if not person.contacts:
            notes.append(Note("no_contact_methods", {"person_id": person_id}))
            continue
        for index, contact in enumerate(person.contacts):
            planned.append(
                PlannedNotification(
                    key=f"{alert_id}:{fire.loop}:{fire.step}:{person_id}:{index}",
                    person_id=person_id,
                    channel=contact.channel,
                    destination=contact.destination,
                    not_before=fire.at + contact.delay,
                    step=fire.step,
                    loop=fire.loop,
                    rate_limit=contact.rate_limit,
                    contact_method_id=contact.id,
                )
            )
    return planned, notes
