"""Helpers of the integration tests: a paged responder, keys, alerts as the API shows them."""

from __future__ import annotations

from typing import Any

import httpx

from tests.oncall.helpers import HttpSink, created, webhook_responders


async def responder(
    client: httpx.AsyncClient, sink: HttpSink, pid: str, headers: dict[str, str]
) -> None:
    """A person paged by webhook at `sink/<pid>` and a one-step policy `<pid>`."""
    await webhook_responders(client, sink, (pid,), headers)


async def key(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    type: str,
    policy_id: str,
    **extra: Any,
) -> dict[str, Any]:
    """A new integration key (the 201 answer, with its token and URL)."""
    body = {"name": f"{type} key", "type": type, "policy_id": policy_id, **extra}
    return await created(client, "/api/v1/integrations", body, headers)


async def alerts(client: httpx.AsyncClient, headers: dict[str, str], **query: str) -> list[Any]:
    response = await client.get("/api/v1/alerts", params={"limit": 1000, **query}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def alert_detail(client: httpx.AsyncClient, headers: dict[str, str], alert_id: str) -> Any:
    response = await client.get(f"/api/v1/alerts/{alert_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def kinds(detail: dict[str, Any]) -> list[str]:
    return [entry["kind"] for entry in detail["timeline"]]
