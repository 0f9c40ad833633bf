"""The key routes take UUIDs only, leaving the inbound paths to their own routes."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import auth_headers

H = auth_headers("acct-routes")


@pytest.mark.parametrize("inbound", ["heartbeat", "generic", "grafana", "alertmanager"])
async def test_an_inbound_path_takes_post_only(client: httpx.AsyncClient, inbound: str) -> None:
    """`GET /api/v1/integrations/heartbeat` was "no integration 'heartbeat'" from the key
    route, and a 405 there advertised that route's GET and DELETE (schemathesis'
    allow_header_conformance): the key routes match UUIDs only."""
    for method in ("GET", "DELETE", "PUT"):
        answer = await client.request(method, f"/api/v1/integrations/{inbound}", headers=H)
        assert answer.status_code == 405, (method, answer.text)
        assert answer.headers["allow"] == "POST"


async def test_a_key_id_that_is_no_uuid_is_a_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/integrations/not-a-key", headers=H)).status_code == 404
    missing = await client.get(f"/api/v1/integrations/{uuid.uuid4()}", headers=H)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    gone = await client.delete(f"/api/v1/integrations/{uuid.uuid4()}", headers=H)
    assert gone.status_code == 404
