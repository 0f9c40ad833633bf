"""The I/O around the pure engine: load, call `advance`/`plan`, write.

`escalate` runs inside the caller's transaction (the alert's creation, or the
worker's claim of a due escalation) and queues notifications in the outbox.
`tick` is the worker's part: claim due escalations with FOR UPDATE SKIP
LOCKED, one transaction each, so any number of workers can run.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

import asyncpg

from services.common.db import set_tenant
from services.common.errors import NotFound
from services.common.metrics import ALERTS
from services.oncall import schedule as resolver
from services.oncall.escalation import engine
from services.oncall.people import service as people
from services.oncall.schedules import service as schedules
from services.oncall.timeline import record_many

log = logging.getLogger("nsentry.oncall.escalation")
WAKE_CHANNEL = "np_oncall_wake"


def alert_payload(alert: Any) -> dict[str, Any]:
    """The alert as notifications carry it."""
    return {
        "id": str(alert["id"]),
        "policy_id": alert["policy_id"],
        "summary": alert["summary"],
        "details": alert["details"],
        "severity": alert["severity"],
        "dedup_key": alert["dedup_key"],
        "source": alert["source"],
        "created_at": alert["created_at"].isoformat(),
    }


async def _oncall_lookup(
    conn: asyncpg.Connection, targets: tuple[engine.Target, ...], at: datetime
) -> dict[str, str | None | Literal[False]]:
    found: dict[str, str | None | Literal[False]] = {}
    for target in targets:
        if target.type != "schedule" or target.id in found:
            continue
        try:
            schedule = await schedules.load(conn, schedule_id=target.id, since=at, until=at)
        except NotFound:
            found[target.id] = False
            continue
        found[target.id] = resolver.person_at(schedule, at)
    return found


async def _fire(
    conn: asyncpg.Connection, *, account: str, alert: Any, fire: engine.FireStep
) -> int:
    lookup = await _oncall_lookup(conn, fire.targets, fire.at)
    candidates = {t.id for t in fire.targets if t.type == "person"}
    candidates |= {p for p in lookup.values() if isinstance(p, str)}
    rows = await people.get_many(conn, ids=candidates)
    persons = {
        pid: engine.Person.from_json(pid, [m.model_dump(mode="json") for m in p.contact_methods])
        for pid, p in rows.items()
    }
    planned, notes = engine.plan(
        str(alert["id"]), fire, oncall=lambda sid, _at: lookup.get(sid, False), people=persons
    )
    uid = alert["id"]
    events: list[tuple[Any, ...]] = [
        (
            account,
            uid,
            fire.at,
            "escalated",
            None,
            {
                "step": fire.step,
                "loop": fire.loop,
                "targets": [{"type": t.type, "id": t.id} for t in fire.targets],
                "people": sorted({n.person_id for n in planned}),
            },
        )
    ]
    events += [
        (
            account,
            uid,
            fire.at,
            note.kind,
            None,
            {"step": fire.step, "loop": fire.loop, **note.details},
        )
        for note in notes
    ]
    payload_alert = alert_payload(alert)
    queued = []
    if planned:
        queued = await conn.fetch(
            """
            INSERT INTO np_oncall.notifications
                (source_account_id, alert_id, idempotency_key, person_id, channel, destination,
                 rate_limit, step, loop, payload, not_before, created_at, updated_at)
            SELECT $1, $2, u.k, u.p, u.c, u.d, u.r, $3, $4, u.b, u.t, $5, $5
            FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[],
                        $11::jsonb[], $12::timestamptz[]) AS u(k, p, c, d, r, b, t)
            ON CONFLICT (source_account_id, idempotency_key) DO NOTHING
            RETURNING id, person_id, channel, not_before
            """,
            account,
            uid,
            fire.step,
            fire.loop,
            fire.at,
            [n.key for n in planned],
            [n.person_id for n in planned],
            [n.channel for n in planned],
            [n.destination for n in planned],
            [None if n.rate_limit is None else dict(n.rate_limit) for n in planned],
            [
                {
                    "event": "alert.notification",
                    "idempotency_key": n.key,
                    "source_account_id": account,
                    "alert": payload_alert,
                    "person": {"id": n.person_id, "name": rows[n.person_id].name},
                    "escalation": {"step": n.step, "loop": n.loop},
                }
                for n in planned
            ],
            [n.not_before for n in planned],
        )
    events += [
        (
            account,
            uid,
            fire.at,
            "notification_queued",
            q["id"],
            {
                "person_id": q["person_id"],
                "channel": q["channel"],
                "not_before": q["not_before"].isoformat(),
            },
        )
        for q in queued
    ]
    if fire.last:
        events.append(
            (
                account,
                uid,
                fire.at,
                "escalation_exhausted",
                None,
                {"step": fire.step, "loop": fire.loop},
            )
        )
    await record_many(conn, events)
    return len(queued)


async def escalate(
    conn: asyncpg.Connection,
    *,
    account: str,
    alert: Any,
    policy: dict[str, Any],
    state: engine.State,
    now: datetime,
) -> engine.State | None:
    """Fire what is due at `now` and store the next state (deleted when exhausted)."""
    new_state, fired = engine.advance(engine.Policy.from_json(policy), state, now)
    queued = 0
    for fire in fired:
        queued += await _fire(conn, account=account, alert=alert, fire=fire)
        ALERTS.labels("escalated").inc()
    if new_state is None:
        await conn.execute(
            "DELETE FROM np_oncall.escalations WHERE source_account_id = $1 AND alert_id = $2",
            account,
            alert["id"],
        )
    else:
        await conn.execute(
            """
            INSERT INTO np_oncall.escalations
                (source_account_id, alert_id, policy, next_step, loop, next_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (source_account_id, alert_id) DO UPDATE
            SET next_step = EXCLUDED.next_step, loop = EXCLUDED.loop, next_at = EXCLUDED.next_at
            """,
            account,
            alert["id"],
            policy,
            new_state.step,
            new_state.loop,
            new_state.at,
        )
    if queued:
        await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)
    return new_state


async def act_as_tenant(conn: asyncpg.Connection, account: str) -> None:
    """From here to the end of the transaction, act as the services' role for one account.

    The worker role bypasses RLS to claim work across accounts; the work itself
    (reading people and schedules by id) must see one account only; set_tenant
    switches to the RLS-bound role for the rest of the transaction.
    """
    await set_tenant(conn, account)


async def tick(pool: asyncpg.Pool, now: datetime, *, limit: int = 500) -> int:
    """Advance every escalation due at `now`; returns how many alerts were advanced."""
    advanced = 0
    for _ in range(limit):
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """
                SELECT e.source_account_id, e.policy, e.next_step, e.loop, e.next_at,
                       a.id, a.policy_id, a.summary, a.details, a.severity, a.dedup_key,
                       a.source, a.created_at, a.status
                FROM np_oncall.escalations e
                JOIN np_oncall.alerts a
                  ON a.source_account_id = e.source_account_id AND a.id = e.alert_id
                WHERE e.next_at <= $1
                ORDER BY e.next_at
                LIMIT 1
                FOR UPDATE OF e SKIP LOCKED
                """,
                now,
            )
            if row is None:
                break
            account = row["source_account_id"]
            await act_as_tenant(conn, account)
            if row["status"] != "triggered":  # ack/resolve delete the row; belt and braces
                await conn.execute(
                    "DELETE FROM np_oncall.escalations "
                    "WHERE source_account_id = $1 AND alert_id = $2",
                    account,
                    row["id"],
                )
                continue
            await escalate(
                conn,
                account=account,
                alert=row,
                policy=row["policy"],
                state=engine.State(row["next_step"], row["loop"], row["next_at"]),
                now=now,
            )
            advanced += 1
    return advanced


async def responders(
    conn: asyncpg.Connection, *, targets: list[engine.Target], at: datetime
) -> list[str]:
    """Who a step with these targets would notify at `at` (person ids, in target order)."""
    lookup = await _oncall_lookup(conn, tuple(targets), at)
    found: list[str] = []
    for target in targets:
        person = target.id if target.type == "person" else lookup.get(target.id)
        if isinstance(person, str) and person not in found:
            found.append(person)
    return found
