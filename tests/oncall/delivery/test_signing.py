"""Standard Webhooks: every outgoing webhook and Slack message is signed with its
contact method's own secret, verified here as a receiver would, with the
`standardwebhooks` package (not the project's code). Secrets are shown once, rotate
(the old one stops at once), survive a PATCH that keeps the method, and a method
without one sends nothing. The migration gave existing methods ids and secrets."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.common import db
from services.oncall.delivery.channels import signature
from services.oncall.worker import Worker
from tests.conftest import auth_headers
from tests.oncall.helpers import SIGNING_SECRET, FakeClock, HttpSink

pytestmark = pytest.mark.db
H = auth_headers("signing")
DOC = (Path(__file__).resolve().parents[3] / "docs/oncall-api.md").read_text()
MIGRATION = (
    Path(__file__).resolve().parents[3]
    / "migrations/default/1796312286675_oncall_links_feeds_signing"
)


@pytest.fixture(scope="module")
async def owner(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await db.connect(database_url)
    yield conn
    await conn.close()


async def _person(client: httpx.AsyncClient, sink: HttpSink, pid: str) -> dict[str, Any]:
    body = {
        "id": pid,
        "name": pid.title(),
        "contact_methods": [
            {"type": "webhook", "url": sink.url(f"/sig/{pid}")},
            {"type": "slack", "url": sink.url(f"/sig/{pid}-slack")},
            {"type": "email", "address": f"{pid}@example.com"},
        ],
    }
    response = await client.post("/api/v1/people", json=body, headers=H)
    assert response.status_code == 201, response.text
    policy = {"id": pid, "name": pid, "steps": [{"targets": [{"type": "person", "id": pid}]}]}
    answer = await client.post("/api/v1/policies", json=policy, headers=H)
    assert answer.status_code == 201, answer.text
    return response.json()


async def _page(
    client: httpx.AsyncClient, worker: Worker, clock: FakeClock, pid: str, summary: str
) -> str:
    response = await client.post(
        "/api/v1/alerts", json={"policy_id": pid, "summary": summary}, headers=H
    )
    assert response.status_code == 201, response.text
    await worker.deliver(clock())
    return str(response.json()["id"])


def _of(sink: HttpSink, path: str, alert_id: str, status: int | None = 200) -> list[Any]:
    return [r for r in sink.to(path, status) if alert_id in r.body.decode()]


def _secrets(person: dict[str, Any]) -> dict[str, str]:
    return {m["type"]: m.get("signing_secret") for m in person["contact_methods"]}


async def test_methods_get_ids_and_a_secret_shown_only_at_creation(
    client: httpx.AsyncClient, sink: HttpSink, owner: asyncpg.Connection
) -> None:
    person = await _person(client, sink, "sig-ada")
    methods = {m["type"]: m for m in person["contact_methods"]}
    assert len({m["id"] for m in methods.values()}) == 3
    for kind in ("webhook", "slack"):
        secret = methods[kind]["signing_secret"]
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert "signing_secret" not in methods["email"]
    shown = (await client.get("/api/v1/people/sig-ada", headers=H)).json()
    assert {m.get("signing_secret") for m in shown["contact_methods"]} == {None}
    listed = (await client.get("/api/v1/people", headers=H)).json()["data"]
    assert all(m.get("signing_secret") is None for p in listed for m in p["contact_methods"])
    stored = await owner.fetch(
        "SELECT contact_method_id, secret FROM np_oncall.contact_secrets "
        "WHERE source_account_id = 'signing' AND person_id = 'sig-ada'"
    )
    assert {r["contact_method_id"]: r["secret"] for r in stored} == {
        methods[k]["id"]: methods[k]["signing_secret"] for k in ("webhook", "slack")
    }


async def test_every_webhook_verifies_with_its_own_secret_on_every_attempt(
    client: httpx.AsyncClient, sink: HttpSink, worker: Worker, clock: FakeClock
) -> None:
    secrets = _secrets(await _person(client, sink, "sig-bob"))
    sink.script("/sig/sig-bob", 503)  # the first attempt fails: the retry is signed too
    alert = await _page(client, worker, clock, "sig-bob", "signed")
    clock.advance(hours=2)
    await worker.deliver(clock())
    attempts = _of(sink, "/sig/sig-bob", alert, None)
    assert [r.status for r in attempts] == [503, 200]
    [slack] = _of(sink, "/sig/sig-bob-slack", alert)
    for received, secret, other in (
        (attempts[0], secrets["webhook"], secrets["slack"]),
        (attempts[1], secrets["webhook"], secrets["slack"]),
        (slack, secrets["slack"], secrets["webhook"]),
    ):
        Webhook(secret).verify(received.body, received.headers)  # raises if it does not
        with pytest.raises(WebhookVerificationError):
            Webhook(other).verify(received.body, received.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(received.body.replace(b"signed", b"forged"), received.headers)
        # X-Signature kept for older receivers (WEBHOOK_SIGNING_SECRET is set here)
        expected = signature(SIGNING_SECRET.encode(), received.body)
        assert received.headers["x-signature"] == expected
    # one message id for every attempt of a notification (receivers deduplicate on it)
    assert attempts[0].headers["webhook-id"] == attempts[1].headers["webhook-id"]
    assert attempts[0].headers["webhook-id"] != slack.headers["webhook-id"]


async def test_a_rotated_secret_verifies_and_the_old_one_stops(
    client: httpx.AsyncClient, sink: HttpSink, worker: Worker, clock: FakeClock
) -> None:
    person = await _person(client, sink, "sig-cy")
    old = _secrets(person)["webhook"]
    ids = {m["type"]: m["id"] for m in person["contact_methods"]}
    path = f"/api/v1/people/sig-cy/contact-methods/{ids['webhook']}/rotate-secret"
    rotated = await client.post(path, headers=H)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["signing_secret"]
    assert rotated.json()["id"] == ids["webhook"] and new.startswith("whsec_") and new != old

    alert = await _page(client, worker, clock, "sig-cy", "after rotation")
    [received] = _of(sink, "/sig/sig-cy", alert)
    Webhook(new).verify(received.body, received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(received.body, received.headers)
    # the Slack method kept its own secret
    [slack] = _of(sink, "/sig/sig-cy-slack", alert)
    Webhook(_secrets(person)["slack"]).verify(slack.body, slack.headers)

    email = f"/api/v1/people/sig-cy/contact-methods/{ids['email']}/rotate-secret"
    assert (await client.post(email, headers=H)).status_code == 409
    for missing in (
        "/api/v1/people/sig-cy/contact-methods/nope/rotate-secret",
        f"/api/v1/people/nobody/contact-methods/{ids['webhook']}/rotate-secret",
    ):
        assert (await client.post(missing, headers=H)).status_code == 404
    # another account cannot rotate it
    other = await client.post(path, headers=auth_headers("signing-other"))
    assert other.status_code == 404


async def test_patch_keeps_methods_and_their_secrets_new_ones_get_theirs(
    client: httpx.AsyncClient,
    sink: HttpSink,
    worker: Worker,
    clock: FakeClock,
    owner: asyncpg.Connection,
) -> None:
    person = await _person(client, sink, "sig-dee")
    secrets = _secrets(person)
    kept = [
        {k: v for k, v in m.items() if k not in ("id", "signing_secret")}
        for m in person["contact_methods"]
        if m["type"] != "slack"
    ]
    added = {"type": "webhook", "url": sink.url("/sig/sig-dee-new")}
    patched = await client.patch(
        "/api/v1/people/sig-dee", json={"contact_methods": [*kept, added]}, headers=H
    )
    assert patched.status_code == 200, patched.text
    methods = patched.json()["contact_methods"]
    before = {m["type"]: m["id"] for m in person["contact_methods"]}
    assert [m["id"] for m in methods[:2]] == [before["webhook"], before["email"]]
    assert methods[0].get("signing_secret") is None  # kept: not shown again
    fresh = methods[2]["signing_secret"]
    assert fresh.startswith("whsec_")
    stored = await owner.fetchval(
        "SELECT count(*) FROM np_oncall.contact_secrets "
        "WHERE source_account_id = 'signing' AND person_id = 'sig-dee'"
    )
    assert stored == 2  # the Slack method's secret went with it

    alert = await _page(client, worker, clock, "sig-dee", "after patch")
    [old_method] = _of(sink, "/sig/sig-dee", alert)
    Webhook(secrets["webhook"]).verify(old_method.body, old_method.headers)
    [new_method] = _of(sink, "/sig/sig-dee-new", alert)
    Webhook(fresh).verify(new_method.body, new_method.headers)
    assert not _of(sink, "/sig/sig-dee-slack", alert)


async def test_no_webhook_leaves_unsigned(
    client: httpx.AsyncClient,
    sink: HttpSink,
    worker: Worker,
    clock: FakeClock,
    owner: asyncpg.Connection,
) -> None:
    await _person(client, sink, "sig-eve")
    await owner.execute(
        "DELETE FROM np_oncall.contact_secrets "
        "WHERE source_account_id = 'signing' AND person_id = 'sig-eve'"
    )
    alert = await _page(client, worker, clock, "sig-eve", "unsigned?")
    assert not _of(sink, "/sig/sig-eve", alert, None)
    assert not _of(sink, "/sig/sig-eve-slack", alert, None)
    detail = (await client.get(f"/api/v1/alerts/{alert}", headers=H)).json()
    hooks = [n for n in detail["notifications"] if n["channel"] in ("webhook", "slack")]
    assert [n["status"] for n in hooks] == ["failed_permanent"] * 2
    assert all("signing secret" in n["last_error"] for n in hooks)


async def test_the_migration_gives_existing_methods_ids_and_secrets(
    owner: asyncpg.Connection,
) -> None:
    """Rolled back: the migration down, a person stored the old way, the migration up."""
    methods = [
        {"type": "webhook", "url": "https://hooks.example.com/a"},
        {"type": "email", "address": "old@example.com"},
        {"type": "slack", "url": "https://hooks.slack.com/services/T/B/X"},
    ]
    transaction = owner.transaction()
    await transaction.start()
    try:
        await owner.execute((MIGRATION / "down.sql").read_text())
        await owner.execute(
            "INSERT INTO np_oncall.people (source_account_id, id, name, contact_methods) "
            "VALUES ('signing-old', 'old', 'Old', $1)",
            methods,
        )
        await owner.execute((MIGRATION / "up.sql").read_text())
        stored = await owner.fetchval(
            "SELECT contact_methods FROM np_oncall.people WHERE source_account_id = 'signing-old'"
        )
        secrets = await owner.fetch(
            "SELECT contact_method_id, secret FROM np_oncall.contact_secrets "
            "WHERE source_account_id = 'signing-old'"
        )
    finally:
        await transaction.rollback()
    assert [m["type"] for m in stored] == ["webhook", "email", "slack"]
    assert len({m["id"] for m in stored}) == 3
    signed = {m["id"] for m in stored if m["type"] != "email"}
    assert {r["contact_method_id"] for r in secrets} == signed
    for row in secrets:
        assert row["secret"].startswith("whsec_")
        assert len(base64.b64decode(row["secret"][6:])) == 32


async def test_the_documented_receiver_snippets_verify_a_real_request(
    client: httpx.AsyncClient, sink: HttpSink, worker: Worker, clock: FakeClock
) -> None:
    """docs/oncall-api.md's verification code, run as written against what the sink got."""
    secret = _secrets(await _person(client, sink, "sig-fay"))["webhook"]
    alert = await _page(client, worker, clock, "sig-fay", "documented")
    [received] = _of(sink, "/sig/sig-fay", alert)
    section = DOC.split("### Signing (Standard Webhooks)", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(block.replace('"whsec_..."', repr(secret)), namespace)  # noqa: S102
    assert namespace["receive"](received.body, received.headers)["alert"]["id"] == alert
    assert namespace["verify"](secret, received.body, received.headers)
    assert not namespace["verify"](secret, received.body + b" ", received.headers)
    with pytest.raises(PermissionError):
        namespace["receive"](received.body.replace(b"documented", b"forged"), received.headers)
