"""Calendar feeds: a schedule's and a person's shifts at an absolute URL whose token is
the only credential (no bearer), revocable (404 after), stored only as a hash."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from icalendar import Calendar

from services.common import db
from services.common.settings import Settings
from services.oncall.app import create_app
from services.oncall.schedules import feeds
from tests.conftest import auth_headers, serve_app
from tests.oncall.helpers import FakeClock

pytestmark = pytest.mark.db
H = auth_headers("feeds")
PUBLIC = "https://oncall.example.com/base"


@pytest.fixture(scope="module")
async def public(oncall_settings: Settings, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """The service with PUBLIC_URL set, as clients reach it behind a gateway."""
    settings = oncall_settings.model_copy(update={"public_url": PUBLIC})
    async with serve_app(create_app(settings, clock=clock)) as http:
        yield http


@pytest.fixture(scope="module")
async def owner(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await db.connect(database_url)
    yield conn
    await conn.close()


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    response = await client.post(path, json=body, headers=H)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
async def setup(client: httpx.AsyncClient) -> None:
    for pid, name in (("fd-ada", "Ada"), ("fd-bob", "Bob")):
        await _post(client, "/api/v1/people", {"id": pid, "name": name})
    for sid, who in (("fd-day", ["fd-ada", "fd-bob"]), ("fd-night", ["fd-ada"])):
        rotation = {"type": "daily", "handoff": "2026-11-23T09:00", "participants": who}
        await _post(
            client,
            "/api/v1/schedules",
            {
                "id": sid,
                "name": sid.title(),
                "timezone": "Europe/Berlin",
                "layers": [{"name": "main", "rotation": rotation}],
            },
        )


def _path(url: str, base: str = "http://testserver") -> str:
    assert url.startswith(base), url
    return url[len(base) :]


def _events(body: bytes) -> list[Any]:
    return list(Calendar.from_ical(body).walk("VEVENT"))


async def test_a_schedule_feed_opens_with_its_token_and_404s_once_revoked(
    client: httpx.AsyncClient, setup: None, owner: asyncpg.Connection
) -> None:
    created = await client.post("/api/v1/schedules/fd-day/feed", headers=H)
    assert created.status_code == 201, created.text
    url = created.json()["feed_url"]
    assert url.startswith("http://testserver/api/v1/feeds/ncf_") and url.endswith(".ics")
    again = await client.post("/api/v1/schedules/fd-day/feed", headers=H)
    assert again.status_code == 200 and again.json()["feed_url"] == url
    shown = (await client.get("/api/v1/schedules/fd-day", headers=H)).json()
    assert shown["feed_url"] == url

    feed = await client.get(_path(url))  # no Authorization header at all
    assert feed.status_code == 200, feed.text
    assert feed.headers["content-type"].startswith("text/calendar")
    events = _events(feed.content)
    assert events and {str(e["x-nsentry-person-id"]) for e in events} == {"fd-ada", "fd-bob"}

    # stored as a hash: the token appears in no column
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    row = await owner.fetchrow(
        "SELECT * FROM np_oncall.calendar_feeds WHERE source_account_id = 'feeds' "
        "AND schedule_id = 'fd-day'"
    )
    assert bytes(row["token_hash"]) == hashlib.sha256(token.encode()).digest()
    assert token not in str(dict(row))

    wrong = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert (await client.get(f"/api/v1/feeds/{wrong}.ics")).status_code == 404
    assert (await client.get("/api/v1/feeds/nonsense.ics")).status_code == 404

    assert (await client.delete("/api/v1/schedules/fd-day/feed", headers=H)).status_code == 204
    assert (await client.get(_path(url))).status_code == 404
    assert (await client.get("/api/v1/schedules/fd-day", headers=H)).json()["feed_url"] is None
    assert (await client.delete("/api/v1/schedules/fd-day/feed", headers=H)).status_code == 404
    # a new feed is a new token
    renewed = (await client.post("/api/v1/schedules/fd-day/feed", headers=H)).json()
    assert renewed["feed_url"] != url
    assert (await client.get(_path(renewed["feed_url"]))).status_code == 200


async def test_feeds_are_per_account_and_need_a_bearer_to_manage(
    client: httpx.AsyncClient, setup: None
) -> None:
    other = auth_headers("feeds-other")
    foreign = await client.post("/api/v1/schedules/fd-night/feed", headers=other)
    assert foreign.status_code == 404
    assert (await client.post("/api/v1/schedules/fd-night/feed")).status_code == 401
    assert (await client.post("/api/v1/schedules/nope/feed", headers=H)).status_code == 404
    url = (await client.post("/api/v1/schedules/fd-night/feed", headers=H)).json()["feed_url"]
    assert (
        await client.delete("/api/v1/schedules/fd-night/feed", headers=other)
    ).status_code == 404
    assert (await client.get(_path(url))).status_code == 200  # another account revoked nothing


async def test_my_shifts_feed_covers_every_schedule_of_the_person_only(
    client: httpx.AsyncClient, setup: None
) -> None:
    created = await client.post("/api/v1/people/fd-bob/feed", headers=H)
    assert created.status_code == 201, created.text
    url = created.json()["feed_url"]
    assert (await client.get("/api/v1/people/fd-bob", headers=H)).json()["feed_url"] == url
    events = _events((await client.get(_path(url))).content)
    assert events
    assert {str(e["x-nsentry-person-id"]) for e in events} == {"fd-bob"}
    assert {str(e["x-nsentry-schedule-id"]) for e in events} == {"fd-day"}

    ada = (await client.post("/api/v1/people/fd-ada/feed", headers=H)).json()["feed_url"]
    mine = _events((await client.get(_path(ada))).content)
    assert {str(e["x-nsentry-schedule-id"]) for e in mine} == {"fd-day", "fd-night"}
    assert {str(e["x-nsentry-person-id"]) for e in mine} == {"fd-ada"}

    assert (await client.delete("/api/v1/people/fd-bob/feed", headers=H)).status_code == 204
    assert (await client.get(_path(url))).status_code == 404
    assert (await client.get(_path(ada))).status_code == 200


async def test_feed_urls_are_built_from_public_url(public: httpx.AsyncClient, setup: None) -> None:
    url = (await public.post("/api/v1/schedules/fd-night/feed", headers=H)).json()["feed_url"]
    assert url.startswith(f"{PUBLIC}/api/v1/feeds/ncf_")
    path = url[len(PUBLIC) :]
    assert (await public.get(path)).status_code == 200


async def test_the_feed_lookup_sees_one_feed_under_the_rls_bound_login(
    client: httpx.AsyncClient, oncall_settings: Settings, setup: None
) -> None:
    """As nsentry_app, before the account is known: no feed is visible but the one the
    token's selector names; once scoped, that account's rows only; nothing writable."""
    url = (await client.post("/api/v1/people/fd-ada/feed", headers=H)).json()["feed_url"]
    other = auth_headers("feeds-rls")
    await client.post("/api/v1/people", json={"id": "fd-zed", "name": "Zed"}, headers=other)
    await client.post("/api/v1/people/fd-zed/feed", headers=other)
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    pool = await db.create_pool(oncall_settings.app_dsn, role=None, min_size=1, max_size=1)
    try:
        async with db.tenant_transaction(pool, "") as conn:
            assert await conn.fetchval("SELECT current_user") == "nsentry_app"
            assert await conn.fetchval("SELECT count(*) FROM np_oncall.calendar_feeds") == 0
            other = token[:-1] + ("x" if token[-1] != "x" else "y")  # never the token itself
            assert await feeds.open_feed(conn, other) is None
            row = await feeds.open_feed(conn, token)
            assert row is not None and row["person_id"] == "fd-ada"
            accounts = await conn.fetch(
                "SELECT DISTINCT source_account_id FROM np_oncall.calendar_feeds "
                "UNION SELECT DISTINCT source_account_id FROM np_oncall.people"
            )
            assert {r["source_account_id"] for r in accounts} == {"feeds"}
            deleted = await conn.execute(
                "DELETE FROM np_oncall.calendar_feeds WHERE source_account_id = 'feeds-rls'"
            )
            assert deleted == "DELETE 0"
            await conn.execute("ROLLBACK AND CHAIN")
    finally:
        await pool.close()
