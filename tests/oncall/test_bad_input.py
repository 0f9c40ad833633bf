"""Hostile input gets a 4xx with the envelope, never a 500 (review findings)."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import httpx
import pytest

from services.common.pagination import encode_cursor
from services.oncall.delivery.channels import MAX_RETRY_AFTER_SECONDS, classify
from services.oncall.delivery.outbox import RetryPolicy
from services.oncall.validation import SLUG
from tests.conftest import auth_headers

H = auth_headers("acct-bad-input")
UUID_KEYED = {"/api/v1/alerts", "/api/v1/overrides"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/people",
        "/api/v1/schedules",
        "/api/v1/policies",
        "/api/v1/alerts",
        "/api/v1/overrides",
    ],
)
@pytest.mark.parametrize(
    "position", [["bad", "x"], [5, "x"], [None, None], ["2026-11-23T08:00:00+00:00", "not-a-uuid"]]
)
async def test_forged_cursor_is_a_client_error(
    client: httpx.AsyncClient, path: str, position: list[object]
) -> None:
    response = await client.get(path, params={"cursor": encode_cursor(position)}, headers=H)
    if position[1] == "not-a-uuid" and path not in UUID_KEYED:
        # a valid position for lists keyed by text ids: simply nothing after it
        assert response.status_code == 200, response.text
        return
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"] in {"bad_request", "validation_error"}


async def test_nul_character_is_refused_and_nothing_is_written(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/people", json={"id": "nul-person", "name": "Ada\u0000"}, headers=H
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert (await client.get("/api/v1/people/nul-person", headers=H)).status_code == 404


@pytest.mark.parametrize("header", ["1e20", "inf", "nan", "-5", "99999999999"])
def test_retry_after_is_bounded(header: str) -> None:
    result = classify(httpx.Response(503, headers={"retry-after": header}))
    assert result.outcome == "retry"
    assert result.retry_after is None or 0 <= result.retry_after <= MAX_RETRY_AFTER_SECONDS
    policy = RetryPolicy()
    delay = policy.delay(3, random.Random(1), result.retry_after)
    assert timedelta(0) < delay <= policy.cap


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/overrides", {"since": "-1e-144"}),
        ("/api/v1/overrides", {"until": "1700000000"}),
        ("/api/v1/overrides", {"since": "2600-01-01T00:00:00Z"}),
    ],
)
async def test_query_instants_are_rfc_3339_from_1970_to_2200(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    response = await client.get(path, params=params, headers=H)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


async def test_an_override_past_2200_is_refused(client: httpx.AsyncClient) -> None:
    """Issue 12, item 1: such an override was stored and then broke every read of its
    schedule; it is refused at the door."""
    response = await client.post(
        "/api/v1/overrides",
        json={
            "schedule_id": "no-matter",
            "person_id": "no-matter",
            "start": "2026-12-03T00:00:00Z",
            "end": "2600-01-01T00:00:00Z",
        },
        headers=H,
    )
    assert response.status_code == 422, response.text
    assert "end" in response.json()["error"]["message"]


@pytest.mark.parametrize("zone", ["posix/Europe/Berlin", "right/UTC", "posixrules"])
async def test_a_zone_file_that_is_no_zone_name_is_refused(
    client: httpx.AsyncClient, zone: str
) -> None:
    """zoneinfo loads any file under the tz folder; a zone is one of the names the
    OpenAPI document lists (the IANA database installed)."""
    body = {"id": "zone-file", "name": "z", "timezone": zone}
    response = await client.post("/api/v1/people", json=body, headers=H)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"] == ["body", "timezone"]


STEPS = [{"targets": [{"type": "person", "id": "nobody"}]}]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/policies", {"name": "p", "steps": STEPS, "repeat": "1"}),
        ("/api/v1/policies", {"name": "p", "steps": STEPS, "repeat": True}),
        (
            "/api/v1/people",
            {
                "name": "p",
                "contact_methods": [{"type": "email", "address": "a@b.c", "delay_minutes": "5"}],
            },
        ),
    ],
)
async def test_numbers_are_json_numbers(
    client: httpx.AsyncClient, path: str, body: dict[str, object]
) -> None:
    """What the OpenAPI document types as an integer is one: "1" or true was taken."""
    response = await client.post(path, json=body, headers=H)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"][-1] in {"repeat", "delay_minutes"}


async def test_the_document_states_the_field_rules(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    update = schemas["PersonUpdate"]["properties"]
    assert "anyOf" not in update["name"] and update["name"]["type"] == "string"
    assert "Europe/Berlin" in update["timezone"]["enum"]
    email = schemas["PersonCreate"]["properties"]["email"]["anyOf"][0]["pattern"]
    for address, valid in (("ada@example.com", True), ("a@b.", False), ("a\x1cb@c", False)):
        assert bool(re.search(email, address)) is valid, address
    assert schemas["PolicyCreate"]["properties"]["id"]["anyOf"][0]["pattern"] == SLUG.pattern
