"""Email-to-alert: an SMTP server (aiosmtpd) that turns mail to ``<token>@<domain>``
into an alert of that email key, deduplicated by subject.

Off unless `INBOUND_EMAIL_PORT` is set (and `INBOUND_EMAIL_DOMAIN` names the domain
the addresses are at); the on-call worker runs it, or `nsentry inbound-email` alone.
A recipient that is not a live email key of that domain is refused at RCPT (550),
so nothing is queued for it; the alert is created when the message is accepted, in
the key's account (the same door as the inbound HTTP routes, `deps.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import hashlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import asyncpg
from aiosmtpd.smtp import SMTP

from services.common.db import tenant_transaction
from services.oncall.integrations import service, store, tokens
from services.oncall.integrations.payloads import Event

log = logging.getLogger("nsentry.oncall.inbound_email")
MAX_BODY_CHARS = 10_000
MAX_MESSAGE_BYTES = 1024 * 1024


def _now() -> datetime:
    return datetime.now(UTC)


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        return ""
    return str(content)[:MAX_BODY_CHARS]


def event_of(message: EmailMessage, severity: str) -> Event:
    """The alert a message opens (pure): summary = subject, dedup by subject."""
    subject = " ".join(str(message.get("subject", "")).split()) or "(no subject)"
    key = hashlib.sha256(subject.lower().encode()).hexdigest()[:32]
    details = {
        "from": str(message.get("from", "")),
        "to": str(message.get("to", "")),
        "subject": subject,
        "message_id": str(message.get("message-id", "")),
        "body": _text(message),
    }
    return Event("open", f"email:{key}", subject[:1024], details, severity)


class Handler:
    """aiosmtpd's handler: RCPT checks the key, DATA opens the alerts."""

    def __init__(
        self, pool: asyncpg.Pool, *, domain: str, clock: Callable[[], datetime] = _now
    ) -> None:
        self.pool = pool
        self.domain = domain.lower()
        self.clock = clock

    def _token(self, address: str) -> str | None:
        local, at, domain = address.rpartition("@")
        if not at or domain.lower() != self.domain or tokens.selector_of(local) is None:
            return None
        return local.lower()

    async def _key(self, conn: asyncpg.Connection, token: str) -> Any:
        selector = tokens.selector_of(token)
        row = await store.lookup(conn, selector) if selector else None
        if not tokens.matches(token, None if row is None else row["token_hash"]):
            return None
        return row if row["type"] == "email" else None

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        token = self._token(address)
        if token is None:
            return "550 5.1.1 no such integration address"
        async with tenant_transaction(self.pool, "") as conn:
            if await self._key(conn, token) is None:
                return "550 5.1.1 no such integration address"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        message = BytesParser(policy=email.policy.default).parsebytes(envelope.content)
        assert isinstance(message, EmailMessage)
        opened = 0
        try:
            for address in envelope.rcpt_tos:
                token = self._token(address)
                if token is None:
                    continue
                async with tenant_transaction(self.pool, "") as conn:
                    row = await self._key(conn, token)
                    if row is None:  # deleted since RCPT
                        continue
                    account = row["source_account_id"]
                    await store.scope_to(conn, account)
                    await service.apply(
                        conn,
                        account=account,
                        integration=row,
                        events=[event_of(message, row["severity"])],
                        now=self.clock(),
                    )
                    opened += 1
        except Exception:  # the sender keeps the message and tries again later
            log.exception("inbound email to %s failed", envelope.rcpt_tos)
            return "451 4.3.0 temporary failure, try again later"
        log.info("inbound email: %d alert(s) from %s", opened, envelope.mail_from)
        return "250 Message accepted"


@contextlib.asynccontextmanager
async def serving(
    pool: asyncpg.Pool,
    *,
    host: str,
    port: int,
    domain: str,
    clock: Callable[[], datetime] = _now,
) -> AsyncIterator[asyncio.Server]:
    """The SMTP server on `host:port` in the running loop, for the block's lifetime."""
    handler = Handler(pool, domain=domain, clock=clock)
    loop = asyncio.get_running_loop()
    connections: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()

    def session() -> SMTP:
        smtp = SMTP(handler, data_size_limit=MAX_MESSAGE_BYTES, hostname=domain)
        made = smtp.connection_made

        def connection_made(transport: asyncio.BaseTransport) -> None:
            connections.add(transport)  # aiosmtpd may drop its own reference first
            made(transport)

        smtp.connection_made = connection_made  # type: ignore[method-assign]
        return smtp

    server = await loop.create_server(session, host=host, port=port)
    log.info("inbound email on %s:%d for @%s", host, port, domain)
    try:
        yield server
    finally:
        server.close()
        # the server stops listening, but (before Python 3.12) leaves open sessions open
        for transport in list(connections):
            if not transport.is_closing():
                transport.close()
        await server.wait_closed()
