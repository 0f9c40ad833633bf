"""Console security: CSRF, one account per session, the cookie's flags, sign-out and
expiry on the server, and no secret in a page or a URL."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from services.console.sessions import COOKIE
from tests.conftest import JWT_HS_KEY, PLUGIN_SECRET
from tests.console.pages import shot, sign_in
from tests.console.stack import Stack

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CLAIMS = "https://hasura.io/jwt/claims"


def hasura_jwt(account: str, expires_in: int = 3600) -> str:
    session = {
        "x-hasura-default-role": "user",
        "x-hasura-allowed-roles": ["user"],
        "x-hasura-user-id": "u-7",
        "x-hasura-source-account-id": account,
    }
    # the services check `exp` against their own (wall) clock, as pyjwt does
    payload = {"sub": "u-7", "exp": int(time.time()) + expires_in, CLAIMS: session}
    return jwt.encode(payload, JWT_HS_KEY, algorithm="HS256")


async def http_sign_in(
    site: Stack, *, account: str = "primary", token: str | None = None
) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=site.console, timeout=10, trust_env=False)
    form = await client.get("/signin")
    csrf = CSRF.search(form.text)
    assert csrf
    data = {"csrf_token": csrf.group(1)}
    data.update({"token": token} if token else {"secret": PLUGIN_SECRET, "account": account})
    answer = await client.post("/signin", data=data)
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
    return client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found
    return found.group(1)


@pytest.fixture(scope="module")
async def data(site: Stack) -> dict[str, Any]:
    await site.call("anomaly", "POST", "/api/v1/detectors", json={"id": "a-only", "name": "A's"})
    await site.call("oncall", "POST", "/api/v1/people", json={"id": "ann", "name": "Ann"})
    await site.call("oncall", "POST", "/api/v1/policies", json={
        "id": "ops", "name": "Ops",
        "steps": [{"delay_minutes": 5, "targets": [{"type": "person", "id": "ann"}]}],
    })  # fmt: skip
    alert = await site.call(
        "oncall", "POST", "/api/v1/alerts", json={"policy_id": "ops", "summary": "disk full"}
    )
    return {"alert": alert["id"]}


@pytest.fixture
async def client(site: Stack, data: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    client = await http_sign_in(site)
    yield client
    await client.aclose()


async def test_form_without_csrf_is_refused(
    client: httpx.AsyncClient, site: Stack, data: dict[str, Any]
) -> None:
    for body in ({}, {"csrf_token": "forged"}):
        answer = await client.post(f"/alerts/{data['alert']}/ack", data=body)
        assert answer.status_code == 403, answer.text
    alert = await site.call("oncall", "GET", f"/api/v1/alerts/{data['alert']}")
    assert alert["status"] == "triggered"
    # the sign-in form has its own token, bound to a cookie of the form
    fresh = httpx.AsyncClient(base_url=site.console, trust_env=False)
    try:
        answer = await fresh.post("/signin", data={"secret": PLUGIN_SECRET, "account": "x"})
        assert answer.status_code == 403
        assert COOKIE not in answer.cookies
    finally:
        await fresh.aclose()
    # with the token it acts
    page = await client.get(f"/alerts/{data['alert']}")
    answer = await client.post(
        f"/alerts/{data['alert']}/ack", data={"csrf_token": csrf_of(page.text)}
    )
    assert answer.status_code == 303


async def test_contact_method_forms_without_csrf_are_refused(
    client: httpx.AsyncClient, site: Stack, data: dict[str, Any]
) -> None:
    await site.call("oncall", "PATCH", "/api/v1/people/ann", json={
        "contact_methods": [{"id": "mail", "type": "email", "address": "ann@example.com"}],
    })  # fmt: skip
    form = {"type": "webhook", "destination": "http://127.0.0.1:9/x", "delay_minutes": "0"}
    for path in ("/people/ann/contact-methods", "/people/ann/contact-methods/mail",
                 "/people/ann/contact-methods/mail/delete",
                 "/people/ann/contact-methods/mail/rotate-secret"):  # fmt: skip
        for token in ({}, {"csrf_token": "forged"}):
            answer = await client.post(path, data={**form, **token})
            assert answer.status_code == 403, (path, answer.text)
    person = await site.call("oncall", "GET", "/api/v1/people/ann")
    assert [(m["id"], m["type"]) for m in person["contact_methods"]] == [("mail", "email")]
    # with the token it acts
    page = await client.get("/people/ann")
    answer = await client.post(
        "/people/ann/contact-methods/mail",
        data={"csrf_token": csrf_of(page.text), "type": "email", "destination": "",
              "delay_minutes": "7"},
    )  # fmt: skip
    assert answer.status_code == 303, answer.text
    person = await site.call("oncall", "GET", "/api/v1/people/ann")
    assert person["contact_methods"][0]["delay_minutes"] == 7


async def test_every_form_carries_a_csrf_field(client: httpx.AsyncClient) -> None:
    for path in ("/", "/detectors/a-only", "/alerts", "/schedules", "/people", "/people/ann",
                 "/policies/ops"):  # fmt: skip
        html = (await client.get(path)).text
        for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", html, re.S):
            assert re.search(r'name="[^"]*csrf[^"]*"', form), (path, form[:200])


async def test_a_session_sees_only_its_account(site: Stack, data: dict[str, Any]) -> None:
    other = await http_sign_in(site, account="acme")
    try:
        assert (await other.get("/detectors/a-only")).status_code == 404
        assert (await other.get(f"/alerts/{data['alert']}")).status_code == 404
        assert (await other.get("/policies/ops")).status_code == 404
        overview = await other.get("/")
        assert "disk full" not in overview.text and "a-only" not in overview.text
        token = csrf_of(overview.text)
        acted = await other.post(f"/alerts/{data['alert']}/resolve", data={"csrf_token": token})
        assert acted.status_code == 404
    finally:
        await other.aclose()


async def test_jwt_sign_in_takes_the_account_of_the_token(site: Stack) -> None:
    client = await http_sign_in(site, token=hasura_jwt("acme"))
    try:
        page = await client.get("/")
        assert "account <strong>acme</strong>" in page.text
        assert (await client.get("/detectors/a-only")).status_code == 404
    finally:
        await client.aclose()
    refused = httpx.AsyncClient(base_url=site.console, trust_env=False)
    try:
        form = await refused.get("/signin")
        answer = await refused.post(
            "/signin", data={"csrf_token": csrf_of(form.text), "token": "not.a.jwt"}
        )
        assert answer.status_code == 303 and "/signin?error=" in answer.headers["location"]
        assert COOKIE not in answer.cookies
    finally:
        await refused.aclose()


async def test_cookie_flags(site: Stack) -> None:
    client = httpx.AsyncClient(base_url=site.console, timeout=10, trust_env=False)
    try:
        form = await client.get("/signin")
        answer = await client.post(
            "/signin",
            data={"csrf_token": csrf_of(form.text), "secret": PLUGIN_SECRET, "account": "primary"},
        )
        header = next(
            v for v in answer.headers.get_list("set-cookie") if v.startswith(f"{COOKIE}=")
        )
        flags = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
        assert {"httponly", "samesite", "max-age", "path"} <= flags
        assert "SameSite=strict" in header or "SameSite=Strict" in header
        assert PLUGIN_SECRET not in header
    finally:
        await client.aclose()


async def test_signed_out_cookie_is_refused(client: httpx.AsyncClient, site: Stack) -> None:
    cookie = client.cookies[COOKIE]
    page = await client.get("/")
    assert page.status_code == 200
    out = await client.post("/signout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    replay = httpx.AsyncClient(base_url=site.console, trust_env=False, cookies={COOKIE: cookie})
    try:
        answer = await replay.get("/")
        assert answer.status_code == 303 and answer.headers["location"] == "/signin"
    finally:
        await replay.aclose()


async def test_tampered_cookie_is_refused(client: httpx.AsyncClient, site: Stack) -> None:
    cookie = client.cookies[COOKIE]
    version, sid, rest = cookie.split(".", 2)
    for forged in (
        f"{version}.{sid}.acme.{rest.split('.', 1)[1]}",  # another account, same MAC
        cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"),
    ):
        probe = httpx.AsyncClient(base_url=site.console, trust_env=False, cookies={COOKIE: forged})
        try:
            assert (await probe.get("/")).status_code == 303
        finally:
            await probe.aclose()


async def test_expired_session_is_refused(client: httpx.AsyncClient, site: Stack) -> None:
    assert (await client.get("/")).status_code == 200
    site.clock.advance(hours=8, seconds=1)
    try:
        answer = await client.get("/")
        assert answer.status_code == 303 and answer.headers["location"] == "/signin"
    finally:
        site.clock.advance(hours=-8, seconds=-1)


async def test_no_secret_in_pages_or_urls(
    browser: Any, site: Stack, data: dict[str, Any], shots: Path
) -> None:
    page = await sign_in(browser, site.console)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    try:
        for path in ("/", "/detectors/a-only", "/alerts", f"/alerts/{data['alert']}",
                     "/schedules", "/people", "/people/ann", "/policies/ops"):  # fmt: skip
            await page.goto(site.console + path)
            html = await page.content()
            assert PLUGIN_SECRET not in html, path
            assert "Bearer" not in html, path
        cookies = await page.context.cookies()
        session = next(c for c in cookies if c["name"] == COOKIE)
        assert session["httpOnly"] is True and session["sameSite"] == "Strict"
        assert PLUGIN_SECRET not in session["value"]
        # scripts cannot read it
        assert COOKIE not in await page.evaluate("() => document.cookie")
        await shot(page, shots, "people")
    finally:
        await page.context.close()
    assert urls and not [u for u in urls if PLUGIN_SECRET in u or "token=" in u]
