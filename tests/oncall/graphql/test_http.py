"""/graphql over HTTP: what is not a GraphQL request is a 4xx, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import auth_headers

A = auth_headers("acct-graphql-http")


async def test_graphql_takes_post_only(client: httpx.AsyncClient) -> None:
    """GET /graphql (no IDE, no queries by GET) is a 405 naming POST, not Strawberry's
    plain-text 404; without a bearer it is a 401 like any route."""
    answer = await client.get("/graphql", headers=A)
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    assert answer.json()["error"]["code"] == "method_not_allowed"
    assert (await client.get("/graphql")).status_code == 401
    documented = (await client.get("/openapi.json")).json()["paths"]["/graphql"]
    assert set(documented) == {"post"}
    assert set(documented["post"]["responses"]["400"]["content"]) == {
        "text/plain",
        "application/json",
    }


@pytest.mark.parametrize(
    "body", ['"{ schedules { id } }"', "5", "true", "null", '[{"query": "{ x }"}, 1]']
)
async def test_graphql_json_that_is_no_request_object_is_a_400(
    client: httpx.AsyncClient, body: str
) -> None:
    """Strawberry called ``.get`` on whatever JSON came: a string or a number was a 500."""
    answer = await client.post(
        "/graphql", content=body, headers={**A, "Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
