"""Generic, Grafana and Alertmanager keys end to end in process: a payload opens an
alert that pages a real HTTP sink, a repeat notifies nobody again, resolving closes
it; a wrong or deleted key is a 401 with nothing written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.oncall.worker import Worker
from tests.conftest import auth_headers
from tests.oncall.helpers import FakeClock, HttpSink
from tests.oncall.integrations.helpers import alert_detail, alerts, key, kinds, responder

H = auth_headers("acct-inbound")


def grafana(status: str, fingerprint: str = "c6eadffa33fcdf37") -> dict[str, Any]:
    return {
        "receiver": "nsentry",
        "status": status,
        "orgId": 1,
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "High memory usage", "team": "blue", "severity": "warning"},
                "annotations": {"summary": "High memory on us-1", "runbook_url": "https://rb/1"},
                "startsAt": "2026-11-23T07:58:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://grafana/alerting/1/edit",
                "fingerprint": fingerprint,
                "silenceURL": "https://grafana/alerting/silence/new",
                "dashboardURL": "",
                "panelURL": "",
                "values": {"B": 44.2, "C": 1},
            }
        ],
        "groupLabels": {"alertname": "High memory usage"},
        "commonLabels": {"alertname": "High memory usage"},
        "commonAnnotations": {},
        "externalURL": "https://grafana/",
        "version": "1",
        "groupKey": '{}/{}:{alertname="High memory usage"}',
        "truncatedAlerts": 0,
        "title": f"[{status.upper()}:1] High memory usage",
        "state": "alerting" if status == "firing" else "ok",
        "message": "...",
    }


def alertmanager(status: str, fingerprint: str) -> dict[str, Any]:
    payload = grafana(status, fingerprint)
    for extra in ("orgId", "title", "state", "message"):
        payload.pop(extra)
    payload["version"] = "4"
    payload["alerts"][0]["annotations"] = {}
    payload["alerts"][0]["labels"] = {"alertname": "DiskFull", "instance": "db1"}
    payload["groupLabels"] = payload["commonLabels"] = {"alertname": "DiskFull"}
    payload["groupKey"] = '{}:{alertname="DiskFull"}'
    return payload


async def post(client: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response:
    return await client.post(url.removeprefix("http://testserver"), **kwargs)


async def test_generic_opens_pages_deduplicates_and_closes(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    await responder(client, sink, "gen-ada", H)
    made = await key(client, H, "generic", "gen-ada")
    opened = await post(
        client, made["url"], json={"summary": "db down", "details": {"host": "db1"}, "dedup": "db"}
    )
    assert opened.status_code == 201, opened.text
    result = opened.json()
    assert result["action"] == "opened"
    alert = result["alert"]
    assert alert["integration_id"] == made["id"] and alert["source"] == "integration:generic"
    assert (alert["summary"], alert["details"], alert["status"]) == (
        "db down",
        {"host": "db1"},
        "triggered",
    )
    await worker.deliver(clock())
    [page] = sink.to("/gen-ada")
    assert page.json()["alert"]["id"] == alert["id"]

    again = await post(client, made["url"], json={"summary": "db down again", "dedup": "db"})
    assert again.status_code == 200 and again.json()["action"] == "deduplicated"
    assert again.json()["alert"]["id"] == alert["id"] and again.json()["alert"]["dedup_count"] == 1
    await worker.deliver(clock.advance(minutes=1))
    assert len(sink.to("/gen-ada")) == 1  # nobody notified again

    closed = await post(client, made["url"], data={"dedup": "db", "action": "close"})  # a form
    assert closed.status_code == 200, closed.text
    assert closed.json()["action"] == "closed" and closed.json()["alert"]["status"] == "resolved"
    detail = await alert_detail(client, H, alert["id"])
    assert detail["resolved_by"] == f"integration:{made['id']}"
    assert kinds(detail)[-1] == "resolved"
    nothing = await client.post(
        "/api/v1/integrations/generic",
        params={"token": made["token"], "dedup": "db", "action": "close"},
    )
    assert nothing.status_code == 200 and nothing.json()["action"] == "not_open"


async def test_generic_by_bearer_and_query_parameters(
    client: httpx.AsyncClient, sink: HttpSink
) -> None:
    await responder(client, sink, "gen-bob", H)
    made = await key(client, H, "generic", "gen-bob")
    response = await client.post(
        "/api/v1/integrations/generic",
        params={"summary": "queue stuck", "severity": "warning"},
        headers={"Authorization": f"Bearer {made['token']}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["alert"]["severity"] == "warning"
    # the same summary and details again: the derived dedup key deduplicates
    repeat = await client.post(
        "/api/v1/integrations/generic",
        params={"summary": "queue stuck", "severity": "warning"},
        headers={"Authorization": f"Bearer {made['token']}"},
    )
    assert repeat.status_code == 200 and repeat.json()["action"] == "deduplicated"


async def _refused_and_nothing_written(
    client: httpx.AsyncClient, send: Callable[[], Any], status: int
) -> None:
    before = await alerts(client, H)
    response = await send()
    assert response.status_code == status, response.text
    assert "error" in response.json()
    assert await alerts(client, H) == before


@pytest.mark.parametrize("kind", ["generic", "grafana", "alertmanager", "heartbeat"])
async def test_wrong_missing_and_deleted_keys_are_401_with_nothing_written(
    client: httpx.AsyncClient, sink: HttpSink, kind: str
) -> None:
    await responder(client, sink, f"auth-{kind}", H)
    made = await key(
        client, H, kind, f"auth-{kind}", **({"interval_seconds": 60} if kind == "heartbeat" else {})
    )
    body = grafana("firing") if kind in ("grafana", "alertmanager") else {"summary": "x"}
    path = f"/api/v1/integrations/{kind}"
    token = made["token"]
    wrong = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    for params, headers in [
        ({"token": wrong}, {}),
        ({}, {"Authorization": f"Bearer {wrong}"}),
        ({}, {}),
        ({"token": "nsk_garbage"}, {}),
        ({}, auth_headers("acct-inbound")),  # the plugin secret is no integration key
    ]:
        await _refused_and_nothing_written(
            client,
            lambda p=params, h=headers: client.post(path, params=p, json=body, headers=h),
            401,
        )
    deleted = await client.delete(f"/api/v1/integrations/{made['id']}", headers=H)
    assert deleted.status_code == 204
    await _refused_and_nothing_written(
        client, lambda: client.post(path, params={"token": token}, json=body), 401
    )


async def test_a_key_of_another_type_is_a_403(client: httpx.AsyncClient, sink: HttpSink) -> None:
    await responder(client, sink, "type-p", H)
    made = await key(client, H, "grafana", "type-p")
    await _refused_and_nothing_written(
        client,
        lambda: client.post(
            "/api/v1/integrations/generic", params={"token": made["token"], "summary": "x"}
        ),
        403,
    )


async def test_bad_payloads_are_422_with_nothing_written(
    client: httpx.AsyncClient, sink: HttpSink
) -> None:
    await responder(client, sink, "bad-in", H)
    gen = await key(client, H, "generic", "bad-in")
    am = await key(client, H, "alertmanager", "bad-in")
    token = {"token": gen["token"]}
    for body in ({"details": "no summary"}, {"summary": "x", "action": "open"}, [1, 2]):
        await _refused_and_nothing_written(
            client,
            lambda b=body: client.post("/api/v1/integrations/generic", params=token, json=b),
            422,
        )
    broken = alertmanager("firing", "aa")
    broken["alerts"].append({"status": "pending"})  # one bad alert refuses the whole payload
    await _refused_and_nothing_written(
        client,
        lambda: client.post(
            "/api/v1/integrations/alertmanager", params={"token": am["token"]}, json=broken
        ),
        422,
    )
    await _refused_and_nothing_written(
        client,
        lambda: client.post(
            "/api/v1/integrations/generic",
            params=token,
            content=b"summary=x",
            headers={"Content-Type": "text/plain"},
        ),
        415,
    )


async def test_grafana_fires_pages_deduplicates_and_resolves(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    await responder(client, sink, "graf-ada", H)
    made = await key(client, H, "grafana", "graf-ada")
    firing = await post(client, made["url"], json=grafana("firing"))
    assert firing.status_code == 200, firing.text
    [result] = firing.json()["results"]
    assert result["action"] == "opened"
    alert = result["alert"]
    assert alert["summary"] == "High memory on us-1" and alert["severity"] == "warning"
    assert alert["details"]["values"] == {"B": 44.2, "C": 1}
    await worker.deliver(clock())
    assert [p.json()["alert"]["id"] for p in sink.to("/graf-ada")] == [alert["id"]]

    repeat = await post(client, made["url"], json=grafana("firing"))
    assert repeat.json()["results"][0]["action"] == "deduplicated"
    await worker.deliver(clock.advance(minutes=1))
    assert len(sink.to("/graf-ada")) == 1

    resolved = await post(client, made["url"], json=grafana("resolved"))
    [closing] = resolved.json()["results"]
    assert closing["action"] == "closed" and closing["alert"]["status"] == "resolved"
    # after resolving, the same fingerprint firing again is a new alert
    refired = await post(client, made["url"], json=grafana("firing"))
    assert refired.json()["results"][0]["action"] == "opened"
    assert refired.json()["results"][0]["alert"]["id"] != alert["id"]


async def test_alertmanager_alerts_of_one_notification_and_group_mode(
    client: httpx.AsyncClient, sink: HttpSink
) -> None:
    await responder(client, sink, "am-ada", H)
    made = await key(client, H, "alertmanager", "am-ada")
    payload = alertmanager("firing", "f1")
    payload["alerts"].append({**payload["alerts"][0], "fingerprint": "f2"})
    answer = (await post(client, made["url"], json=payload)).json()["results"]
    assert [r["action"] for r in answer] == ["opened", "opened"]
    assert answer[0]["alert"]["summary"] == "DiskFull"  # no summary annotation: alertname
    one_resolved = alertmanager("resolved", "f2")
    answer = (await post(client, made["url"], json=one_resolved)).json()["results"]
    assert [r["action"] for r in answer] == ["closed"]
    open_ones = [
        a for a in await alerts(client, H, status="triggered") if a["integration_id"] == made["id"]
    ]
    assert [a["details"]["fingerprint"] for a in open_ones] == ["f1"]

    grouped = await key(client, H, "alertmanager", "am-ada", dedup="group")
    answer = (await post(client, grouped["url"], json=payload)).json()["results"]
    assert [r["action"] for r in answer] == ["opened"]
    assert answer[0]["alert"]["summary"] == "DiskFull (2 alerts)"
