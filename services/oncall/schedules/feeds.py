"""Calendar feeds: an iCalendar URL with its own token, for calendar apps that cannot
send a bearer header. One feed per schedule and one per person ("my shifts").

A token is ``ncf_`` + a 16-character selector + a 32-character secret (lower-case
base32). The secret is an HMAC of the selector under the feeds key
(``links.keys.derived_key(settings, "feeds")``), so the service can show a feed's URL
again while it exists; the database keeps only the selector and the token's SHA-256,
which the feed request is checked against in constant time. A feed request finds its
row by selector (RLS policy ``calendar_feed_by_selector``), then scopes itself to the
row's account like any request. Revoking deletes the row: the URL answers 404.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Literal

import asyncpg
from icalendar import Calendar

from services.common.errors import ApiError, NotFound
from services.oncall.resolver.ical import PRODID
from services.oncall.schedules import service
from services.oncall.validation import not_found

PREFIX = "ncf_"
PATTERN = re.compile(rf"^{PREFIX}([a-z2-7]{{16}})[a-z2-7]{{32}}$")
_DUMMY_HASH = hashlib.sha256(b"nsentry: no such calendar feed").digest()
Kind = Literal["schedule", "person"]


def _b32(raw: bytes, length: int) -> str:
    return base64.b32encode(raw).decode().lower().rstrip("=")[:length]


def token_for(key: bytes, selector: str) -> str:
    return PREFIX + selector + _b32(hmac.new(key, selector.encode(), hashlib.sha256).digest(), 32)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def selector_of(token: str) -> str | None:
    found = PATTERN.fullmatch(token)
    return found.group(1) if found else None


def feed_url(base: str, token: str) -> str:
    return f"{base}/api/v1/feeds/{token}.ics"


def _column(kind: Kind) -> str:
    return "schedule_id" if kind == "schedule" else "person_id"


async def _target_exists(conn: asyncpg.Connection, kind: Kind, target: str) -> None:
    table = "np_oncall.schedules" if kind == "schedule" else "np_oncall.people"
    found = await conn.fetchval(f"SELECT 1 FROM {table} WHERE id = $1", target)  # noqa: S608
    if found is None:
        raise not_found(kind, target)


async def current_url(
    conn: asyncpg.Connection, *, key: bytes | None, base: str, kind: Kind, target: str
) -> str | None:
    """The URL of the target's feed while one exists (None when the key that minted it
    is no longer the service's: the feed still works, its URL cannot be shown)."""
    if key is None:
        return None
    row = await conn.fetchrow(
        f"SELECT selector, token_hash FROM np_oncall.calendar_feeds "  # noqa: S608
        f"WHERE {_column(kind)} = $1",
        target,
    )
    if row is None:
        return None
    token = token_for(key, row["selector"])
    if not hmac.compare_digest(digest(token), bytes(row["token_hash"])):
        return None
    return feed_url(base, token)


async def create(
    conn: asyncpg.Connection,
    *,
    key: bytes,
    base: str,
    kind: Kind,
    target: str,
    now: datetime,
) -> tuple[str, bool]:
    """The feed's URL, and whether it is new (an existing feed is answered as it is;
    revoke it first for a new token)."""
    await _target_exists(conn, kind, target)
    existing = await current_url(conn, key=key, base=base, kind=kind, target=target)
    if existing is not None:
        return existing, False
    await conn.execute(
        f"DELETE FROM np_oncall.calendar_feeds WHERE {_column(kind)} = $1",  # noqa: S608
        target,
    )
    selector = _b32(secrets.token_bytes(10), 16)
    token = token_for(key, selector)
    await conn.execute(
        f"""
        INSERT INTO np_oncall.calendar_feeds
            (source_account_id, {_column(kind)}, selector, token_hash, created_at)
        VALUES (current_setting('app.source_account_id'), $1, $2, $3, $4)
        """,  # noqa: S608 - the column is one of two constants
        target,
        selector,
        digest(token),
        now,
    )
    return feed_url(base, token), True


async def revoke(conn: asyncpg.Connection, *, kind: Kind, target: str) -> None:
    """Delete the target's feed: its URL answers 404 from now on."""
    await _target_exists(conn, kind, target)
    done = await conn.execute(
        f"DELETE FROM np_oncall.calendar_feeds WHERE {_column(kind)} = $1",  # noqa: S608
        target,
    )
    if done == "DELETE 0":
        raise NotFound(f"{kind} {target!r} has no calendar feed", details={"id": target})


# The feed request: before the account is known it may read the one feed whose
# selector it names; then it is scoped to that feed's account and the selector forgotten.
_LOOKUP = """
SELECT set_config('app.feed_selector', $1, true)
"""
_ROW = """
SELECT source_account_id, schedule_id, person_id, token_hash
FROM np_oncall.calendar_feeds WHERE selector = $1
"""
_SCOPE = (
    "SELECT set_config('app.source_account_id', $1, true), "
    "set_config('app.feed_selector', '', true)"
)


async def open_feed(conn: asyncpg.Connection, token: str) -> asyncpg.Record | None:
    """The feed a token names, its transaction then scoped to the feed's account; None
    for a token that is malformed, unknown, revoked or wrong (the same hash and compare
    as a wrong secret for an unknown selector)."""
    selector = selector_of(token)
    row = None
    if selector is not None:
        await conn.execute(_LOOKUP, selector)
        row = await conn.fetchrow(_ROW, selector)
    expected = bytes(row["token_hash"]) if row is not None else _DUMMY_HASH
    if not hmac.compare_digest(digest(token), expected) or row is None:
        return None
    await conn.execute(_SCOPE, row["source_account_id"])
    return row


async def person_calendar(
    conn: asyncpg.Connection, *, person_id: str, since: datetime, until: datetime, now: datetime
) -> bytes:
    """One person's shifts over every schedule they take part in (by layer or
    override). A schedule whose stored data the resolver refuses is left out."""
    name = await conn.fetchval("SELECT name FROM np_oncall.people WHERE id = $1", person_id)
    rows = await conn.fetch(
        """
        SELECT s.id, s.name FROM np_oncall.schedules s
        WHERE EXISTS (
            SELECT 1 FROM np_oncall.schedule_revisions r
            WHERE r.schedule_id = s.id AND jsonb_path_exists(
                r.layers, '$[*].rotation.participants[*] ? (@ == $p)', $1))
           OR EXISTS (
            SELECT 1 FROM np_oncall.overrides o WHERE o.schedule_id = s.id AND o.person_id = $2
              AND o.end_at > $3 AND o.start_at < $4)
        ORDER BY s.id
        """,
        {"p": person_id},
        person_id,
        since,
        until,
    )
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"My shifts: {name or person_id}")
    for row in rows:
        try:
            body = await service.calendar(
                conn, schedule_id=row["id"], since=since, until=until, now=now
            )
        except ApiError:  # one schedule's refused data does not hide the others
            continue
        for event in Calendar.from_ical(body).walk("VEVENT"):
            if str(event.get("x-nsentry-person-id")) == person_id:
                event["summary"] = f"On call: {row['name']}"
                event.add("x-nsentry-schedule-id", row["id"])
                cal.add_component(event)
    return cal.to_ical()
