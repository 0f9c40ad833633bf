"""Signed session cookies whose state lives in Postgres (np_console.sessions).

The cookie is `v1.<session id>.<account>.<expiry>.<HMAC-SHA256>`: the HMAC makes
it unforgeable, the row makes it revocable. The row (keyed by the SHA-256 of the
session id, scoped to the account by row-level security) holds the signed-in
person's bearer encrypted with Fernet, its expiry and `revoked_at`; a cookie is
accepted only while its row exists, has not expired and is not revoked. Sign-out
sets `revoked_at`, so a replayed cookie is refused by every replica.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from cryptography.fernet import Fernet, InvalidToken

from services.common.auth import ACCOUNT_PATTERN
from services.common.db import tenant_transaction

COOKIE = "nsentry_console"
PRE_COOKIE = "nsentry_console_pre"  # the sign-in form's CSRF pair, before any session


@dataclass(frozen=True)
class Session:
    sid: str
    account: str
    via: str  # "secret" | "jwt"
    bearer: str
    expires_at: datetime


class Keys:
    """The keys derived from the console's secret: cookie MAC, CSRF MAC, Fernet."""

    def __init__(self, material: bytes) -> None:
        self._mac = hmac.new(material, b"cookie", hashlib.sha256).digest()
        self._csrf = hmac.new(material, b"csrf", hashlib.sha256).digest()
        fernet = hmac.new(material, b"credential", hashlib.sha256).digest()
        self.fernet = Fernet(base64.urlsafe_b64encode(fernet))

    def sign(self, text: str) -> str:
        digest = hmac.new(self._mac, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def csrf(self, scope: str) -> str:
        digest = hmac.new(self._csrf, scope.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def csrf_ok(self, scope: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf(scope), given or "")


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def cookie_value(keys: Keys, *, sid: str, account: str, expires_at: datetime) -> str:
    body = f"v1.{sid}.{account}.{int(expires_at.timestamp())}"
    return f"{body}.{keys.sign(body)}"


def parse_cookie(keys: Keys, value: str | None, now: datetime) -> tuple[str, str] | None:
    """(session id, account) of a well-signed, unexpired cookie; None otherwise."""
    if not value:
        return None
    body, _, mac = value.rpartition(".")
    if not body or not hmac.compare_digest(keys.sign(body), mac):
        return None
    parts = body.split(".")
    # an account may hold dots: v1 . sid . account... . expiry
    if len(parts) < 4 or parts[0] != "v1":
        return None
    sid, account, expiry = parts[1], ".".join(parts[2:-1]), parts[-1]
    if not expiry.isdigit() or int(expiry) <= now.timestamp():
        return None
    if not ACCOUNT_PATTERN.fullmatch(account):
        return None
    return sid, account


_INSERT = """
INSERT INTO np_console.sessions
    (source_account_id, id, via, credential, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)
"""
_PRUNE = "DELETE FROM np_console.sessions WHERE source_account_id = $1 AND expires_at < $2"
_LOAD = """
SELECT via, credential, expires_at FROM np_console.sessions
 WHERE source_account_id = $1 AND id = $2 AND revoked_at IS NULL AND expires_at > $3
"""
_REVOKE = """
UPDATE np_console.sessions SET revoked_at = $3
 WHERE source_account_id = $1 AND id = $2 AND revoked_at IS NULL
"""


class SessionStore:
    def __init__(self, pool: asyncpg.Pool, keys: Keys) -> None:
        self.pool = pool
        self.keys = keys

    async def create(
        self, *, account: str, via: str, bearer: str, now: datetime, expires_at: datetime
    ) -> Session:
        sid = secrets.token_urlsafe(32)
        sealed = self.keys.fernet.encrypt(bearer.encode())
        async with tenant_transaction(self.pool, account) as conn:
            await conn.execute(_PRUNE, account, now)
            await conn.execute(_INSERT, account, _hash(sid), via, sealed, now, expires_at)
        return Session(sid=sid, account=account, via=via, bearer=bearer, expires_at=expires_at)

    async def load(self, cookie: str | None, now: datetime) -> Session | None:
        parsed = parse_cookie(self.keys, cookie, now)
        if parsed is None:
            return None
        sid, account = parsed
        async with tenant_transaction(self.pool, account) as conn:
            row = await conn.fetchrow(_LOAD, account, _hash(sid), now)
        if row is None:
            return None
        try:
            bearer = self.keys.fernet.decrypt(bytes(row["credential"])).decode()
        except InvalidToken:  # the console's secret changed: the session is void
            return None
        return Session(
            sid=sid,
            account=account,
            via=row["via"],
            bearer=bearer,
            expires_at=row["expires_at"].astimezone(UTC),
        )

    async def revoke(self, session: Session, now: datetime) -> None:
        async with tenant_transaction(self.pool, session.account) as conn:
            await conn.execute(_REVOKE, session.account, _hash(session.sid), now)
