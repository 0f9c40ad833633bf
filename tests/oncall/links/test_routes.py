"""The token routes (links, feeds) take no bearer: their documents say so (security
[]), and a method they do not take is a 405 without one; everything else keeps
answering 401 without a bearer, unknown routes included."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.db


async def test_token_routes_need_no_bearer_and_others_still_do(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path in ("/api/v1/links/{token}", "/api/v1/feeds/{token}.ics"):
        assert all(op["security"] == [] for op in document["paths"][path].values())
    assert document["paths"]["/api/v1/people/{person_id}"]["get"]["security"] == [{"bearer": []}]

    link = await client.request("TRACE", "/api/v1/links/abc")
    assert link.status_code == 405 and link.headers["allow"] == "GET, POST"
    feed = await client.put("/api/v1/feeds/ncf_abc.ics")
    assert feed.status_code == 405 and feed.headers["allow"] == "GET"
    assert (await client.get("/api/v1/links/abc")).status_code == 404  # no bearer needed
    for method, path in (
        ("TRACE", "/api/v1/people/x"),
        ("PUT", "/api/v1/feeds/abc"),  # not a feed path (no .ics)
        ("GET", "/api/v1/nothing"),
    ):
        assert (await client.request(method, path)).status_code == 401
