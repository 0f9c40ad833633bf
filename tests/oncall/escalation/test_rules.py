"""The engine's side of notification rules (pure): the contacts a person's rules give
for an alert's severity, each with its own delay; without a rule for the severity,
every contact method after its own delay."""

from __future__ import annotations

from datetime import timedelta

from services.oncall.escalation.engine import Person

METHODS = [
    {"id": "pager", "type": "webhook", "url": "https://hooks.example.com/a", "delay_minutes": 1},
    {"id": "mail", "type": "email", "address": "a@example.com", "delay_minutes": 3},
]
RULES = [
    {"severity": "critical", "contact_method_id": "pager", "delay_minutes": 0},
    {"severity": "critical", "contact_method_id": "mail", "delay_minutes": 5},
    {"severity": "warning", "contact_method_id": "mail", "delay_minutes": 0},
    {"severity": "error", "contact_method_id": "gone", "delay_minutes": 0},
]


def _plan(severity: str | None, rules: list[dict[str, object]] | None = RULES) -> list[tuple]:
    person = Person.from_json("ada", METHODS, rules, severity=severity)
    return [(c.id, c.channel, c.delay) for c in person.contacts]


def test_rules_of_the_severity_choose_methods_and_delays() -> None:
    assert _plan("critical") == [
        ("pager", "webhook", timedelta(0)),
        ("mail", "email", timedelta(minutes=5)),
    ]
    assert _plan("warning") == [("mail", "email", timedelta(0))]


def test_without_a_rule_for_the_severity_every_method_after_its_delay() -> None:
    default = [("pager", "webhook", timedelta(minutes=1)), ("mail", "email", timedelta(minutes=3))]
    assert _plan("info") == default
    assert _plan("error") == default  # a rule naming a method that is gone is no rule
    assert _plan("critical", None) == default
    assert _plan("critical", []) == default
