"""The inbound routes' door: an integration key instead of the plugin bearer.

The key comes as `?token=` or `Authorization: Bearer <token>`; it alone names the
account. The request's transaction reads the one key its selector names (RLS policy
`integration_by_selector`), checks the token against the stored hash in constant
time, then scopes itself to that key's account (RLS `tenant_isolation`, as every
request): whatever it reads or writes next is that account's only. A missing, wrong
or deleted key is a 401 before anything is written; a key of another type a 403.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Query, Request

from services.common.db import tenant_transaction
from services.common.errors import Forbidden, Unauthorized
from services.oncall.integrations import store, tokens
from services.oncall.integrations.models import IntegrationType

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# no account yet: the lookup sees the key its selector names and nothing else (no row
# can belong to the empty account: the door admits none)
_NO_ACCOUNT = ""

TokenQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        description="the integration key (or send it as Authorization: Bearer)",
    ),
]


@dataclass(frozen=True)
class Inbound:
    """A request under an integration key: its tenant transaction and the key's row."""

    conn: asyncpg.Connection
    account: str
    integration: Any


def _presented(request: Request, token: str | None) -> str:
    if token:
        return token
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    raise Unauthorized(
        "an integration key is required: ?token= or Authorization: Bearer", headers=_CHALLENGE
    )


def inbound(kind: IntegrationType) -> Callable[..., AsyncIterator[Inbound]]:
    async def dependency(request: Request, token: TokenQuery = None) -> AsyncIterator[Inbound]:
        presented = _presented(request, token)
        selector = tokens.selector_of(presented)
        async with tenant_transaction(request.app.state.pool, _NO_ACCOUNT) as conn:
            row = await store.lookup(conn, selector) if selector else None
            if not tokens.matches(presented, None if row is None else row["token_hash"]):
                raise Unauthorized("invalid integration key", headers=_CHALLENGE)
            assert row is not None
            if row["type"] != kind:
                raise Forbidden(
                    f"this key is a {row['type']} integration's: "
                    f"post to /api/v1/integrations/{row['type']}",
                    details={"type": row["type"]},
                )
            await store.scope_to(conn, row["source_account_id"])
            yield Inbound(conn, row["source_account_id"], row)

    return dependency


InboundGeneric = Annotated[Inbound, Depends(inbound("generic"), scope="function")]
InboundAlertmanager = Annotated[Inbound, Depends(inbound("alertmanager"), scope="function")]
InboundGrafana = Annotated[Inbound, Depends(inbound("grafana"), scope="function")]
InboundHeartbeat = Annotated[Inbound, Depends(inbound("heartbeat"), scope="function")]
