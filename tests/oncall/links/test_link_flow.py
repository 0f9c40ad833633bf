"""Ack, resolve and escalate from the notification, driven over real HTTP: the worker
sends a webhook (and an email) carrying signed links built from PUBLIC_URL; a GET shows
a page with a POST form and changes nothing, the POST acts once, a second POST is
refused (410). Tampered links (another alert, another signature) are 404s that change
nothing; expired ones 410. Every action is on the timeline with the person's id and
name."""

from __future__ import annotations

import base64
import json
import re
from email import message_from_bytes
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import auth_headers
from tests.oncall.conftest import Live
from tests.oncall.helpers import HttpSink, SmtpSink

pytestmark = pytest.mark.db
H = auth_headers("links")


async def _post(live: Live, path: str, body: dict[str, Any], status: int = 201) -> Any:
    response = await live.http.post(path, json=body, headers=H)
    assert response.status_code == status, response.text
    return response.json()


async def _alert(live: Live, alert_id: str) -> Any:
    response = await live.http.get(f"/api/v1/alerts/{alert_id}", headers=H)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
async def setup(live: Live, sink: HttpSink) -> dict[str, str]:
    """Ada (webhook, Slack and email) on step 0, Bob (webhook) on step 1; the signing
    secret of each sink path."""
    ada = await _post(
        live,
        "/api/v1/people",
        {
            "id": "ada",
            "name": "Ada Lovelace",
            "contact_methods": [
                {"type": "webhook", "url": sink.url("/links/ada")},
                {"type": "slack", "url": sink.url("/links/ada-slack")},
                {"type": "email", "address": "ada@example.com"},
            ],
        },
    )
    bob = await _post(
        live,
        "/api/v1/people",
        {
            "id": "bob",
            "name": "Bob",
            "contact_methods": [{"type": "webhook", "url": sink.url("/links/bob")}],
        },
    )
    steps = [
        {"delay_minutes": 15, "targets": [{"type": "person", "id": "ada"}]},
        {"delay_minutes": 15, "targets": [{"type": "person", "id": "bob"}]},
    ]
    await _post(live, "/api/v1/policies", {"id": "links", "name": "Links", "steps": steps})
    return {
        m["url"].removeprefix(sink.base): m["signing_secret"]
        for person in (ada, bob)
        for m in person["contact_methods"]
        if m["type"] != "email"
    }


async def _page(live: Live, sink: HttpSink, summary: str) -> tuple[str, dict[str, str]]:
    """Trigger an alert, deliver, and return its id and the links Ada's webhook got."""
    alert = await _post(live, "/api/v1/alerts", {"policy_id": "links", "summary": summary})
    await live.worker.deliver(live.clock())
    bodies = [r.json() for r in sink.to("/links/ada") if r.json()["alert"]["id"] == alert["id"]]
    assert len(bodies) == 1
    return alert["id"], bodies[0]["links"]


def _deliveries(sink: HttpSink, path: str, alert_id: str) -> int:
    return sum(1 for r in sink.to(path) if alert_id in r.body.decode())


async def test_get_shows_a_form_post_acts_once_and_a_second_post_is_refused(
    live: Live, sink: HttpSink, smtp: SmtpSink, setup: Any
) -> None:
    x, links = await _page(live, sink, "disk full")
    y, _ = await _page(live, sink, "cpu hot")
    assert set(links) == {"ack", "resolve", "escalate"}
    assert all(url.startswith(f"{live.base}/api/v1/links/") for url in links.values())

    page = await live.http.get(links["ack"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in page.text and "disk full" in page.text
    assert "<script" not in page.text
    assert (await _alert(live, x))["status"] == "triggered"  # a GET changes nothing

    done = await live.http.post(links["ack"])
    assert done.status_code == 200, done.text
    detail = await _alert(live, x)
    assert detail["status"] == "acknowledged" and detail["acknowledged_by"] == "ada"
    [entry] = [e for e in detail["timeline"] if e["kind"] == "acknowledged"]
    assert entry["details"]["person"] == {"id": "ada", "name": "Ada Lovelace"}
    assert entry["details"]["via"] == "link"

    again = await live.http.post(links["ack"])
    assert again.status_code == 410 and "used already" in again.text
    assert (await live.http.get(links["ack"])).status_code == 410

    # the link acted on its own alert only; Y escalates, X notifies nobody further
    assert (await _alert(live, y))["status"] == "triggered"
    live.clock.advance(minutes=16)
    await live.worker.tick(live.clock())
    await live.worker.deliver(live.clock())
    assert _deliveries(sink, "/links/bob", y) == 1
    assert _deliveries(sink, "/links/bob", x) == 0
    assert _deliveries(sink, "/links/ada", x) == 1

    # the email and the Slack message carry the same links
    mails = [message_from_bytes(m["data"]) for m in smtp.messages]
    [mail] = [m for m in mails if "disk full" in str(m["Subject"])]
    text = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    found = re.findall(
        rf"^(Acknowledge|Resolve|Escalate): ({re.escape(live.base)}\S+)$", text, re.M
    )
    assert [label for label, _ in found] == ["Acknowledge", "Resolve", "Escalate"], text
    # links of its own notification: valid, and acting on them is refused, not repeated
    mail_ack = found[0][1]
    assert mail_ack != links["ack"]
    assert (await live.http.get(mail_ack)).status_code == 200
    refused = await live.http.post(mail_ack)
    assert refused.status_code == 409 and "already acknowledged" in refused.text
    [slack] = [r for r in sink.to("/links/ada-slack") if "disk full" in r.body.decode()]
    shown = json.loads(slack.body)["text"]
    assert re.search(rf"<{re.escape(live.base)}/api/v1/links/\S+\|Acknowledge>", shown)


def _retarget(token: str, **changes: str) -> str:
    """The token with its payload changed and its signature kept (a forgery)."""
    payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(changes)
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + signature


async def test_a_link_of_one_alert_cannot_act_on_another(
    live: Live, sink: HttpSink, setup: Any
) -> None:
    x, links = await _page(live, sink, "link of X")
    y, _ = await _page(live, sink, "alert Y")
    prefix, token = links["resolve"].rsplit("/", 1)
    forged = [
        _retarget(token, al=y),  # P's link of X pointed at Y
        _retarget(token, p="bob"),  # another person
        _retarget(token, a="primary"),  # another account
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # another signature
        "not-a-link",
    ]
    for bad in forged:
        for method in ("GET", "POST"):
            answer = await live.http.request(method, f"{prefix}/{bad}")
            assert answer.status_code == 404, (bad, method, answer.text)
            assert "not valid" in answer.text
    assert (await _alert(live, x))["status"] == "triggered"
    assert (await _alert(live, y))["status"] == "triggered"
    # the genuine link still acts, on X only
    assert (await live.http.post(links["resolve"])).status_code == 200
    assert (await _alert(live, x))["status"] == "resolved"
    assert (await _alert(live, y))["status"] == "triggered"


async def test_resolve_then_ack_is_a_409_and_an_expired_link_is_a_410(
    live: Live, sink: HttpSink, setup: Any
) -> None:
    x, links = await _page(live, sink, "resolved by link")
    assert (await live.http.post(links["resolve"])).status_code == 200
    detail = await _alert(live, x)
    assert detail["status"] == "resolved"
    [entry] = [e for e in detail["timeline"] if e["kind"] == "resolved"]
    assert entry["details"]["person"] == {"id": "ada", "name": "Ada Lovelace"}
    refused = await live.http.post(links["ack"])
    assert refused.status_code == 409 and "already resolved" in refused.text

    z, later = await _page(live, sink, "left alone")
    live.clock.advance(hours=24, seconds=1)
    for method in ("GET", "POST"):
        expired = await live.http.request(method, later["ack"])
        assert expired.status_code == 410 and "expired" in expired.text
    assert (await _alert(live, z))["status"] == "triggered"


async def test_the_escalate_link_fires_the_next_step_now(
    live: Live, sink: HttpSink, setup: Any
) -> None:
    x, links = await _page(live, sink, "escalate me")
    assert _deliveries(sink, "/links/bob", x) == 0
    assert (await live.http.post(links["escalate"])).status_code == 200
    await live.worker.deliver(live.clock())
    assert _deliveries(sink, "/links/bob", x) == 1  # step 1 at once, not after 15 minutes
    detail = await _alert(live, x)
    [entry] = [e for e in detail["timeline"] if e["kind"] == "escalation_requested"]
    assert entry["details"]["person"] == {"id": "ada", "name": "Ada Lovelace"}
    assert entry["details"]["step"] == 1
    assert (await live.http.post(links["escalate"])).status_code == 410


async def test_every_webhook_of_these_flows_verifies_with_its_methods_secret(
    live: Live, sink: HttpSink, setup: dict[str, str]
) -> None:
    """Run last: every request the sink got here, as a receiver verifies it."""
    received = [r for r in sink.received if r.path.startswith("/links/")]
    assert len(received) >= 10
    for request in received:
        Webhook(setup[request.path]).verify(request.body, request.headers)
