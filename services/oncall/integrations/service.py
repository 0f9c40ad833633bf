"""Integration keys: create (the token shown once), read, delete; what an inbound
payload does to alerts; heartbeat pings and the worker's missed-heartbeat pass."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import asyncpg

from services.common.errors import Conflict, ValidationFailed
from services.common.listing import Filter, Keyset, keyset_page
from services.common.pagination import Page
from services.oncall.alerts import service as alerts
from services.oncall.alerts.models import AlertCreate
from services.oncall.escalation.runner import act_as_tenant
from services.oncall.integrations import heartbeat, store, tokens
from services.oncall.integrations.models import (
    InboundResult,
    Integration,
    IntegrationCreate,
    IntegrationCreated,
)
from services.oncall.integrations.payloads import Event
from services.oncall.validation import field_error, not_found, parse_uuid, raise_field_errors

log = logging.getLogger("nsentry.oncall.integrations")
LISTING = Keyset(table="np_oncall.integrations", columns=store.COLUMNS, id_type="uuid")
HEARTBEAT_KEY = "heartbeat"


def answer(row: Any) -> Integration:
    settings = row["settings"] or {}
    return Integration(
        id=str(row["id"]),
        name=row["name"],
        type=row["type"],
        policy_id=row["policy_id"],
        severity=row["severity"],
        dedup=settings.get("dedup", "fingerprint"),
        interval_seconds=settings.get("interval_seconds"),
        last_ping_at=row["last_ping_at"],
        heartbeat_due_at=row["heartbeat_due_at"],
        created_at=row["created_at"],
    )


def inbound_url(kind: str, token: str, *, base: str, email_domain: str | None) -> str:
    if kind == "email":
        return f"mailto:{token}@{email_domain or 'localhost'}"
    return f"{base.rstrip('/')}/api/v1/integrations/{kind}?token={quote(token)}"


async def create(
    conn: asyncpg.Connection,
    *,
    body: IntegrationCreate,
    now: datetime,
    base_url: str,
    email_domain: str | None,
) -> IntegrationCreated:
    if not await store.policy_exists(conn, body.policy_id):
        raise_field_errors([field_error(("body", "policy_id"), f"no policy {body.policy_id!r}")])
    settings: dict[str, Any] = {}
    if body.type in ("alertmanager", "grafana"):
        settings["dedup"] = body.dedup
    if body.type == "heartbeat":
        settings["interval_seconds"] = body.interval_seconds
    for _ in range(5):  # a selector collision (60 random bits) is all but impossible
        minted = tokens.mint()
        row = await store.insert(
            conn,
            name=body.name,
            type=body.type,
            policy_id=body.policy_id,
            severity=body.severity,
            settings=settings,
            minted=minted,
            now=now,
        )
        if row is not None:
            break
    else:  # pragma: no cover
        raise RuntimeError("could not mint a unique integration selector")
    return IntegrationCreated(
        **answer(row).model_dump(),
        token=minted.token,
        url=inbound_url(body.type, minted.token, base=base_url, email_domain=email_domain),
    )


async def get(conn: asyncpg.Connection, *, integration_id: str) -> Integration:
    row = await store.get(conn, parse_uuid(integration_id, "integration"))
    if row is None:
        raise not_found("integration", integration_id)
    return answer(row)


async def delete(conn: asyncpg.Connection, *, integration_id: str) -> None:
    """The key stops working at once; alerts it opened stay."""
    if not await store.delete(conn, parse_uuid(integration_id, "integration")):
        raise not_found("integration", integration_id)


async def get_all(
    conn: asyncpg.Connection,
    *,
    policy_id: str | None,
    type: str | None,
    limit: int,
    cursor: str | None,
) -> Page[Integration]:
    """In creation order; never with tokens."""
    return await keyset_page(
        conn,
        LISTING,
        build=answer,
        limit=limit,
        cursor=cursor,
        filters=[Filter("policy_id", "=", policy_id), Filter("type", "=", type)],
    )


def _dedup_key(integration: Any, key: str) -> str:
    return f"{integration['id']}:{key}"


async def apply(
    conn: asyncpg.Connection,
    *,
    account: str,
    integration: Any,
    events: list[Event],
    now: datetime,
) -> list[InboundResult]:
    """Open, deduplicate or close an alert per event (in the key's tenant transaction)."""
    results = []
    for event in events:
        key = _dedup_key(integration, event.dedup)
        if event.action == "close":
            results.append(
                await _close(conn, account=account, integration=integration, key=key, now=now)
            )
            continue
        body = AlertCreate(
            policy_id=integration["policy_id"],
            summary=event.summary,
            details=event.details,
            severity=event.severity,  # type: ignore[arg-type]
            dedup_key=key,
            source=f"integration:{integration['type']}",
        )
        try:
            alert, created = await alerts.trigger(
                conn, account=account, body=body, now=now, integration_id=str(integration["id"])
            )
        except ValidationFailed:
            raise Conflict(
                f"the integration's policy {integration['policy_id']!r} no longer exists",
                details={"policy_id": integration["policy_id"]},
            ) from None
        action = (
            "deduplicated"
            if not created
            else ("suppressed" if alert.status == "suppressed" else "opened")
        )
        results.append(InboundResult(action=action, dedup_key=key, alert=alert))
    return results


async def _close(
    conn: asyncpg.Connection, *, account: str, integration: Any, key: str, now: datetime
) -> InboundResult:
    alert_id = await store.open_alert_id(conn, key)
    if alert_id is None:
        return InboundResult(action="not_open", dedup_key=key)
    alert = await alerts.resolve(
        conn,
        account=account,
        alert_id=str(alert_id),
        by=f"integration:{integration['id']}",
        now=now,
    )
    return InboundResult(action="closed", dedup_key=key, alert=alert)


def _interval(integration: Any) -> timedelta:
    return timedelta(seconds=int(integration["settings"]["interval_seconds"]))


async def ping(
    conn: asyncpg.Connection, *, account: str, integration: Any, now: datetime
) -> list[InboundResult]:
    """A heartbeat: the next deadline is set; an open missed-heartbeat alert resolves."""
    row = await store.lock(conn, integration["id"])
    if row is None:  # deleted since the lookup
        raise not_found("integration", str(integration["id"]))
    key = _dedup_key(row, HEARTBEAT_KEY)
    open_id = await store.open_alert_id(conn, key)
    decision = heartbeat.decide(
        interval=_interval(row),
        last_ping_at=row["last_ping_at"],
        alert_open=open_id is not None,
        now=now,
        ping=True,
    )
    await store.set_heartbeat(conn, row["id"], last_ping_at=now, due_at=decision.due_at)
    results = [InboundResult(action="ping")]
    if decision.action == "resolve":
        results.append(await _close(conn, account=account, integration=row, key=key, now=now))
    return results


async def heartbeat_tick(pool: asyncpg.Pool, now: datetime, *, limit: int = 500) -> int:
    """The worker's pass: every heartbeat past its deadline opens its alert; how many."""
    opened = 0
    for _ in range(limit):
        async with pool.acquire() as conn, conn.transaction():
            row = await store.claim_due_heartbeat(conn, now)
            if row is None:
                break
            account = row["source_account_id"]
            await act_as_tenant(conn, account)
            key = _dedup_key(row, HEARTBEAT_KEY)
            try:
                interval = _interval(row)
            except (KeyError, TypeError, ValueError):  # a row written with SQL: not watched
                log.warning("heartbeat %s has no valid interval_seconds: not watched", row["id"])
                await store.set_heartbeat(
                    conn, row["id"], last_ping_at=row["last_ping_at"], due_at=None
                )
                continue
            decision = heartbeat.decide(
                interval=interval,
                last_ping_at=row["last_ping_at"],
                alert_open=await store.open_alert_id(conn, key) is not None,
                now=now,
                ping=False,
            )
            await store.set_heartbeat(
                conn, row["id"], last_ping_at=row["last_ping_at"], due_at=decision.due_at
            )
            if decision.action != "open":
                continue
            event = Event(
                "open",
                HEARTBEAT_KEY,
                f"Heartbeat missed: {row['name']}",
                {
                    "integration_id": str(row["id"]),
                    "interval_seconds": row["settings"]["interval_seconds"],
                    "last_ping_at": row["last_ping_at"].isoformat(),
                },
                row["severity"],
            )
            try:
                await apply(conn, account=account, integration=row, events=[event], now=now)
            except Conflict:
                log.warning("heartbeat %s missed but its policy is gone", row["id"])
                continue
            opened += 1
    return opened


def parse_id(value: str) -> uuid.UUID:
    return parse_uuid(value, "integration")
