"""Issue 14, end to end with real processes: an alert posted to a real Alertmanager
reaches nself-oncall (over real HTTP, PUBLIC_URL pointing at it) through the
alertmanager integration, pages a person's webhook at a real HTTP sink with a Standard
Webhooks signature and ack/resolve/escalate links; the ack link's GET shows a page and
changes nothing, its POST acknowledges with the person on the timeline; past the next
escalation step nothing more is sent; Alertmanager's `resolved` closes the alert.

Alertmanager runs on its real clock (one-second group waits): each of its steps is
polled for with a deadline, never slept for. nself-oncall and its worker run on the
injected clock, advanced by hand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import auth_headers
from tests.oncall.conftest import Live
from tests.oncall.helpers import HttpSink, created
from tests.oncall.integrations.alertmanager import am_alert, until
from tests.oncall.integrations.helpers import alert_detail, alerts, key, kinds

pytestmark = pytest.mark.db
H = auth_headers("acct-e2e-alertmanager")
PATIENCE = 60.0  # seconds: a loaded 2-core machine; an idle one answers in about one


async def _person(live: Live, sink: HttpSink, pid: str, name: str) -> str:
    """A person paged by webhook at `sink/e2e/<pid>`; the method's signing secret."""
    body = {
        "id": pid,
        "name": name,
        "contact_methods": [{"type": "webhook", "url": sink.url(f"/e2e/{pid}")}],
    }
    person = await created(live.http, "/api/v1/people", body, H)
    [method] = person["contact_methods"]
    return str(method["signing_secret"])


def _for(sink: HttpSink, pid: str, alert_id: str) -> list[Any]:
    """The webhook bodies `pid` got about `alert_id`."""
    bodies = [r.json() for r in sink.to(f"/e2e/{pid}")]
    return [b for b in bodies if b["alert"]["id"] == alert_id]


async def test_alertmanager_to_ack_link_to_silence_to_resolved_by_alertmanager(
    live: Live,
    sink: HttpSink,
    am_api: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    ada_secret = await _person(live, sink, "ada", "Ada Lovelace")
    await _person(live, sink, "bob", "Bob")
    steps = [
        {"delay_minutes": 1, "targets": [{"type": "person", "id": "ada"}]},
        {"delay_minutes": 1, "targets": [{"type": "person", "id": "bob"}]},
    ]
    await created(live.http, "/api/v1/policies", {"id": "e2e", "name": "E2E", "steps": steps}, H)
    made = await key(live.http, H, "alertmanager", "e2e")
    assert made["url"].startswith(f"{live.base}/")  # PUBLIC_URL: the live service
    am = await am_api(made["url"])
    try:
        # Alertmanager → nself-oncall: an alert on the policy
        posted = await am.post("/api/v2/alerts", json=am_alert())
        assert posted.status_code == 200, posted.text

        async def opened() -> dict[str, Any] | None:
            found = [a for a in await alerts(live.http, H) if a["integration_id"] == made["id"]]
            return found[0] if found else None

        alert = await until(opened, PATIENCE)
        assert alert["status"] == "triggered" and alert["summary"] == "Disk full on db1"
        # a control alert on the same policy, never acknowledged: it must escalate
        control = await created(
            live.http, "/api/v1/alerts", {"policy_id": "e2e", "summary": "control"}, H
        )

        # nself-oncall → the sink: Ada's signed webhook with the links
        await live.worker.deliver(live.clock())
        [request] = [r for r in sink.to("/e2e/ada") if r.json()["alert"]["id"] == alert["id"]]
        Webhook(ada_secret).verify(request.body, request.headers)
        page = request.json()
        assert page["alert"]["summary"] == "Disk full on db1"
        links = page["links"]
        assert set(links) == {"ack", "resolve", "escalate"}
        assert all(url.startswith(f"{live.base}/api/v1/links/") for url in links.values())
        assert _for(sink, "bob", alert["id"]) == []

        # the ack link: GET shows a page and changes nothing, POST acknowledges
        shown = await live.http.get(links["ack"])
        assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/html")
        assert '<form method="post">' in shown.text and "Disk full on db1" in shown.text
        assert (await alert_detail(live.http, H, alert["id"]))["status"] == "triggered"
        done = await live.http.post(links["ack"])
        assert done.status_code == 200, done.text
        detail = await alert_detail(live.http, H, alert["id"])
        assert detail["status"] == "acknowledged" and detail["acknowledged_by"] == "ada"
        [entry] = [e for e in detail["timeline"] if e["kind"] == "acknowledged"]
        assert entry["details"]["person"] == {"id": "ada", "name": "Ada Lovelace"}
        assert entry["details"]["via"] == "link"

        # past the next step: the control escalates to Bob, the acknowledged alert is silent
        sent = len(sink.received)
        live.clock.advance(minutes=2)
        await live.worker.tick(live.clock())
        await live.worker.deliver(live.clock())
        assert len(_for(sink, "bob", control["id"])) == 1
        assert [r.path for r in sink.received[sent:]] == ["/e2e/bob"]
        assert _for(sink, "bob", alert["id"]) == []
        assert len(_for(sink, "ada", alert["id"])) == 1

        # Alertmanager's resolved (endsAt now, in the past when it arrives) closes it
        resolved = await am.post("/api/v2/alerts", json=am_alert(ends=datetime.now(UTC)))
        assert resolved.status_code == 200, resolved.text

        async def closed() -> dict[str, Any] | None:
            found = await alert_detail(live.http, H, alert["id"])
            return found if found["status"] == "resolved" else None

        detail = await until(closed, PATIENCE)
        assert detail["resolved_by"] == f"integration:{made['id']}"
        assert kinds(detail).count("triggered") == 1
        assert kinds(detail).count("acknowledged") == 1
        await live.worker.tick(live.clock.advance(minutes=30))
        await live.worker.deliver(live.clock())
        assert len(_for(sink, "ada", alert["id"])) == 1  # still the one page, nothing more
        assert _for(sink, "bob", alert["id"]) == []
        assert [
            a["id"] for a in await alerts(live.http, H) if a["integration_id"] == made["id"]
        ] == [alert["id"]]
    finally:
        await am.aclose()
