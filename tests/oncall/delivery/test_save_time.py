"""Contact-method URLs are judged when they are saved: every numeric form of an address
is the address it is (a 422 on the field when it is not allowed), and an allowed one
is stored in canonical form. The real app and Postgres, over HTTP (ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.oncall.app import create_app
from tests.conftest import auth_headers, make_settings, serve_app

H = auth_headers("acct-save")

REFUSED = [
    "http://2852039166/latest/meta-data",
    "http://0xa9fea9fe/latest/meta-data",
    "http://0251.0376.0251.0376/latest/meta-data",
    "http://169.254.169.254/latest/meta-data",
    "http://169.254.43518/",
    "http://[::ffff:127.0.0.1]:8080/hook",
    "http://0x7f.1/hook",
    "http://127.1:9/hook",
    "http://2130706433/hook",
    "https://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/hook",  # full-width digits
    "http://[2002:a9fe:a9fe::]/",  # 6to4 of 169.254.169.254
    "http://1.2.3.256/",  # ends in a number, no address
]


@pytest.fixture(scope="module")
async def strict(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app with an empty allow-list and no local mode."""
    settings = make_settings(database_url, oncall_allowed_destinations="")
    async with serve_app(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
async def loopback_listed(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, oncall_allowed_destinations="127.0.0.1")
    async with serve_app(create_app(settings)) as client:
        yield client


def field_errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    return {".".join(map(str, d["loc"])): d["message"] for d in error["details"]}


@pytest.mark.parametrize("url", REFUSED)
async def test_numeric_forms_are_refused_when_saved(strict: httpx.AsyncClient, url: str) -> None:
    for kind in ("webhook", "slack"):
        created = await strict.post(
            "/api/v1/people",
            json={"name": "X", "contact_methods": [{"type": kind, "url": url}]},
            headers=H,
        )
        errors = field_errors(created)
        assert list(errors) == ["body.contact_methods.0.url"], errors
        message = errors["body.contact_methods.0.url"]
        assert "ONCALL_ALLOWED_DESTINATIONS" in message or "valid IPv4" in message


async def test_numeric_forms_are_refused_on_update(strict: httpx.AsyncClient) -> None:
    person = await strict.post("/api/v1/people", json={"id": "pat", "name": "Pat"}, headers=H)
    assert person.status_code == 201, person.text
    patched = await strict.patch(
        "/api/v1/people/pat",
        json={
            "contact_methods": [
                {"type": "webhook", "url": "https://hooks.example.com/ok"},
                {"type": "webhook", "url": "http://0xa9fea9fe/"},
                {"type": "slack", "url": "http://2852039166/"},
            ]
        },
        headers=H,
    )
    errors = field_errors(patched)
    assert set(errors) == {"body.contact_methods.1.url", "body.contact_methods.2.url"}
    assert "169.254.169.254" in errors["body.contact_methods.1.url"]
    stored = (await strict.get("/api/v1/people/pat", headers=H)).json()
    assert stored["contact_methods"] == []


async def test_an_allowed_numeric_form_is_stored_canonical(
    loopback_listed: httpx.AsyncClient,
) -> None:
    created = await loopback_listed.post(
        "/api/v1/people",
        json={
            "id": "lo",
            "name": "Lo",
            "contact_methods": [
                {"type": "webhook", "url": "http://0x7f.1:8080/hook?a=1"},
                {"type": "slack", "url": "http://2130706433:9/s"},
                {"type": "webhook", "url": "https://hooks.example.com/Kept"},
            ],
        },
        headers=H,
    )
    assert created.status_code == 201, created.text
    urls = [m["url"] for m in created.json()["contact_methods"]]
    assert urls == [
        "http://127.0.0.1:8080/hook?a=1",
        "http://127.0.0.1:9/s",
        "https://hooks.example.com/Kept",
    ]
    stored = (await loopback_listed.get("/api/v1/people/lo", headers=H)).json()
    assert [m["url"] for m in stored["contact_methods"]] == urls
    # 169.254.169.254 is still refused in every form: only 127.0.0.1 is listed
    refused = await loopback_listed.patch(
        "/api/v1/people/lo",
        json={"contact_methods": [{"type": "webhook", "url": "http://0251.0376.0251.0376/"}]},
        headers=H,
    )
    assert list(field_errors(refused)) == ["body.contact_methods.0.url"]
