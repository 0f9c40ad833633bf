"""Notification rules per person by severity (PagerDuty's urgency rules): which
contact methods an alert of a severity uses, and after how long. Without rules (or
for a severity no rule names) every method is used after its own delay_minutes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from services.oncall.worker import Worker
from tests.conftest import auth_headers
from tests.oncall.helpers import FakeClock, HttpSink, SmtpSink

pytestmark = pytest.mark.db
H = auth_headers("rules")
RULES = [
    {"severity": "critical", "contact_method_id": "pager", "delay_minutes": 0},
    {"severity": "critical", "contact_method_id": "mail", "delay_minutes": 5},
    {"severity": "warning", "contact_method_id": "mail"},
]


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    response = await client.post(path, json=body, headers=H)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
async def setup(client: httpx.AsyncClient, sink: HttpSink) -> None:
    methods = [
        {"id": "pager", "type": "webhook", "url": sink.url("/rules/ru-ada")},
        {"id": "mail", "type": "email", "address": "ru-ada@example.com", "delay_minutes": 2},
    ]
    person = await _post(
        client,
        "/api/v1/people",
        {"id": "ru-ada", "name": "Ada", "contact_methods": methods, "notification_rules": RULES},
    )
    assert person["notification_rules"] == [
        {**r, "delay_minutes": r.get("delay_minutes", 0)} for r in RULES
    ]
    steps = [{"targets": [{"type": "person", "id": "ru-ada"}]}]
    await _post(client, "/api/v1/policies", {"id": "ru", "name": "ru", "steps": steps})


async def _queued(client: httpx.AsyncClient, severity: str) -> tuple[str, dict[str, datetime]]:
    alert = await _post(
        client,
        "/api/v1/alerts",
        {"policy_id": "ru", "summary": f"{severity} one", "severity": severity},
    )
    detail = (await client.get(f"/api/v1/alerts/{alert['id']}", headers=H)).json()
    return alert["id"], {
        n["channel"]: datetime.fromisoformat(n["not_before"]) for n in detail["notifications"]
    }


async def test_critical_pages_by_webhook_at_once_and_by_email_five_minutes_later(
    client: httpx.AsyncClient,
    sink: HttpSink,
    smtp: SmtpSink,
    worker: Worker,
    clock: FakeClock,
    setup: None,
) -> None:
    start = clock()
    alert, queued = await _queued(client, "critical")
    assert set(queued) == {"webhook", "email"}
    assert queued["webhook"] == start
    assert queued["email"] == start + timedelta(minutes=5)  # the rule's delay
    mails = len(smtp.messages)
    await worker.deliver(clock())
    assert sum(alert in r.body.decode() for r in sink.to("/rules/ru-ada")) == 1
    assert len(smtp.messages) == mails  # not yet
    clock.advance(minutes=5)
    await worker.deliver(clock())
    assert len(smtp.messages) == mails + 1


async def test_warning_is_email_only_and_an_unnamed_severity_uses_every_method(
    client: httpx.AsyncClient, clock: FakeClock, setup: None
) -> None:
    _, warning = await _queued(client, "warning")
    assert warning == {"email": clock()}
    _, info = await _queued(client, "info")  # no rule: each method after its delay_minutes
    assert info == {
        "webhook": clock(),
        "email": clock() + timedelta(minutes=2),
    }


async def test_rules_must_name_the_persons_contact_methods(
    client: httpx.AsyncClient, setup: None
) -> None:
    bad = {"severity": "critical", "contact_method_id": "nope"}
    answer = await client.patch(
        "/api/v1/people/ru-ada", json={"notification_rules": [*RULES, bad]}, headers=H
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["loc"] == [
        "body",
        "notification_rules",
        "3",
        "contact_method_id",
    ]
    # dropping a method the rules name is refused unless the rules change with it
    only_mail = [{"id": "mail", "type": "email", "address": "ru-ada@example.com"}]
    refused = await client.patch(
        "/api/v1/people/ru-ada", json={"contact_methods": only_mail}, headers=H
    )
    assert refused.status_code == 422
    assert "pager" in refused.text
    person = (await client.get("/api/v1/people/ru-ada", headers=H)).json()
    assert [m["id"] for m in person["contact_methods"]] == ["pager", "mail"]
    assert len(person["notification_rules"]) == 3
    created = await client.post(
        "/api/v1/people",
        json={"name": "X", "notification_rules": [bad]},
        headers=H,
    )
    assert created.status_code == 422
