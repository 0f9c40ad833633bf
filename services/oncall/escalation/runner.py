"""The I/O around the pure engine: load, call `advance`/`plan`, write.

`escalate` runs inside the caller's transaction (the alert's creation, or the
worker's claim of a due escalation) and queues notifications in the outbox:
it reads what it lacks (people, schedules), plans in Python, then writes the
outbox rows, the timeline, the next state and the wake-up in one statement.
`tick` is the worker's part: claim due escalations with FOR UPDATE SKIP
LOCKED, one transaction each, so any number of workers can run. An alert
whose escalation fails (`escalate_isolated`) is recorded on its timeline and
retried with backoff; the others are advanced in the same tick.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from services.common.db import set_tenant
from services.common.errors import ApiError, NotFound
from services.common.metrics import ALERTS
from services.common.outage import outage_kind
from services.oncall import resolver
from services.oncall.escalation import engine
from services.oncall.schedules import service as schedules

log = logging.getLogger("nsentry.oncall.escalation")
WAKE_CHANNEL = "np_oncall_wake"
# an alert whose escalation fails (a schedule with stored data the resolver refuses,
# a policy snapshot that does not parse) is retried after 30 s, 1, 2, 4, 8 minutes,
# then every 10 minutes, until it fires or is acknowledged or resolved
RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=10)


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


PersonRow = tuple[str, list[dict[str, Any]], list[dict[str, Any]]]
"""A person as planning needs it: the name, the stored contact methods and the
notification rules."""


async def _people(
    conn: asyncpg.Connection, ids: set[str], known: dict[str, PersonRow | None]
) -> None:
    """Look up the people of `ids` not yet in `known` (absent ones become None)."""
    wanted = ids - known.keys()
    if not wanted:
        return
    rows = await conn.fetch(
        "SELECT id, name, contact_methods, notification_rules FROM np_oncall.people "
        "WHERE id = ANY($1::text[])",
        list(wanted),
    )
    found = {r["id"]: (r["name"], r["contact_methods"], r["notification_rules"]) for r in rows}
    for person_id in wanted:
        known[person_id] = found.get(person_id)


@dataclass
class _Writes:
    """Everything one `escalate` call writes, sent to the database in one statement."""

    notifications: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[datetime, str, uuid.UUID | None, dict[str, Any]]] = field(
        default_factory=list
    )


async def _plan_fire(
    conn: asyncpg.Connection,
    *,
    account: str,
    alert: Any,
    fire: engine.FireStep,
    known: dict[str, PersonRow | None],
    writes: _Writes,
    key_base: str,
) -> None:
    lookup = await _oncall_lookup(conn, fire.targets, fire.at)
    candidates = {t.id for t in fire.targets if t.type == "person"}
    candidates |= {p for p in lookup.values() if isinstance(p, str)}
    await _people(conn, candidates, known)
    persons: dict[str, engine.Person] = {}
    for pid in candidates:
        row = known.get(pid)
        if row is not None:
            persons[pid] = engine.Person.from_json(pid, row[1], row[2], severity=alert["severity"])
    planned, notes = engine.plan(
        key_base, fire, oncall=lambda sid, _at: lookup.get(sid, False), people=persons
    )
    writes.events.append(
        (
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
    )
    writes.events += [
        (fire.at, note.kind, None, {"step": fire.step, "loop": fire.loop, **note.details})
        for note in notes
    ]
    payload_alert = alert_payload(alert)
    for n in planned:
        nid = uuid.uuid4()
        person = known[n.person_id]
        assert person is not None
        writes.notifications.append(
            (
                nid,
                n.key,
                n.person_id,
                n.channel,
                n.destination,
                None if n.rate_limit is None else dict(n.rate_limit),
                n.step,
                n.loop,
                {
                    "event": "alert.notification",
                    "idempotency_key": n.key,
                    "source_account_id": account,
                    "alert": payload_alert,
                    "person": {"id": n.person_id, "name": person[0]},
                    "escalation": {"step": n.step, "loop": n.loop},
                },
                n.not_before,
                fire.at,
                n.contact_method_id,
            )
        )
        # recorded only if the row is new (a step is never queued twice)
        writes.events.append(
            (
                fire.at,
                "notification_queued",
                nid,
                {
                    "person_id": n.person_id,
                    "channel": n.channel,
                    "not_before": n.not_before.isoformat(),
                },
            )
        )
    if fire.last:
        writes.events.append(
            (fire.at, "escalation_exhausted", None, {"step": fire.step, "loop": fire.loop})
        )


# One round trip for every write of an escalation: the outbox rows (a key already
# queued is skipped, and so is its timeline entry), the timeline in order, the
# next state (or its removal) and the worker's wake-up when something was queued.
_WRITE = """
WITH queued AS (
    INSERT INTO np_oncall.notifications
        (source_account_id, id, alert_id, idempotency_key, person_id, channel, destination,
         rate_limit, step, loop, payload, not_before, created_at, updated_at, contact_method_id)
    SELECT $1, u.i, $2, u.k, u.p, u.c, u.d, u.r, u.s, u.l, u.b, u.t, u.a, u.a, u.m
    FROM unnest($7::uuid[], $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[],
                $13::int[], $14::int[], $15::jsonb[], $16::timestamptz[], $17::timestamptz[],
                $23::text[])
         AS u(i, k, p, c, d, r, s, l, b, t, a, m)
    ON CONFLICT (source_account_id, idempotency_key) DO NOTHING
    RETURNING id
), timeline AS (
    INSERT INTO np_oncall.alert_events
        (source_account_id, alert_id, at, kind, notification_id, details)
    SELECT $1, $2, e.at, e.kind, e.n, e.d
    FROM unnest($18::timestamptz[], $19::text[], $20::uuid[], $21::jsonb[])
         WITH ORDINALITY AS e(at, kind, n, d, ord)
    WHERE e.n IS NULL OR e.n IN (SELECT id FROM queued)
    ORDER BY e.ord
), kept AS (
    INSERT INTO np_oncall.escalations
        (source_account_id, alert_id, policy, next_step, loop, next_at)
    SELECT $1, $2, $3, $4, $5, $6 WHERE $4::int IS NOT NULL
    ON CONFLICT (source_account_id, alert_id) DO UPDATE
    SET next_step = EXCLUDED.next_step, loop = EXCLUDED.loop, next_at = EXCLUDED.next_at
), dropped AS (
    DELETE FROM np_oncall.escalations
    WHERE $4::int IS NULL AND source_account_id = $1 AND alert_id = $2
)
SELECT count(*) AS queued, CASE WHEN count(*) > 0 THEN pg_notify($22, '') END AS woke
FROM queued
"""


async def escalate(
    conn: asyncpg.Connection,
    *,
    account: str,
    alert: Any,
    policy: dict[str, Any],
    state: engine.State,
    now: datetime,
    people: dict[str, PersonRow | None] | None = None,
) -> engine.State | None:
    """Fire what is due at `now` and store the next state (deleted when exhausted).

    `people` may carry people already looked up (None for an id that does not
    exist); the others are read here. The writes take one round trip.
    """
    new_state, fired = engine.advance(engine.Policy.from_json(policy), state, now)
    known: dict[str, PersonRow | None] = dict(people or {})
    writes = _Writes()
    # notification keys are per alert; an alert released from a maintenance window
    # escalates again from step 0 in a new round (`round` in the snapshot), with new keys
    key_base = str(alert["id"]) + (f"~{policy['round']}" if policy.get("round") else "")
    for fire in fired:
        await _plan_fire(
            conn,
            account=account,
            alert=alert,
            fire=fire,
            known=known,
            writes=writes,
            key_base=key_base,
        )
        ALERTS.labels("escalated").inc()
    rows = writes.notifications
    events = writes.events
    await conn.fetchrow(
        _WRITE,
        account,
        alert["id"],
        policy,
        None if new_state is None else new_state.step,
        None if new_state is None else new_state.loop,
        None if new_state is None else new_state.at,
        *([r[i] for r in rows] for i in range(11)),
        [e[0] for e in events],
        [e[1] for e in events],
        [e[2] for e in events],
        [e[3] for e in events],
        WAKE_CHANNEL,
        [r[11] for r in rows],
    )
    return new_state


def retry_delay(attempt: int) -> timedelta:
    """The wait before retry `attempt` (1, 2, ...) of a failed escalation."""
    return min(RETRY_MAX, RETRY_FIRST * 2 ** min(max(attempt - 1, 0), 16))


async def escalate_isolated(
    conn: asyncpg.Connection,
    *,
    account: str,
    alert: Any,
    policy: dict[str, Any],
    state: engine.State,
    now: datetime,
    people: dict[str, PersonRow | None] | None = None,
) -> engine.State | None:
    """`escalate` in a savepoint: a failure stays this alert's, never the caller's.

    On failure nothing of the attempt is kept; the alert's timeline gets an
    `escalation_failed` entry (the step, the attempt, the error, when it is
    retried) and the same step is due again after `retry_delay`. A database
    outage is not this alert's failure and propagates.
    """
    # a savepoint by SQL: the caller's transaction may have been begun by hand
    await conn.execute("SAVEPOINT escalation")
    try:
        new_state = await escalate(
            conn, account=account, alert=alert, policy=policy, state=state, now=now, people=people
        )
    except Exception as exc:
        if outage_kind(exc) is not None or conn.is_closed():
            raise
        await conn.execute("ROLLBACK TO SAVEPOINT escalation")
        return await _defer(
            conn, account=account, alert=alert, policy=policy, state=state, now=now, exc=exc
        )
    await conn.execute("RELEASE SAVEPOINT escalation")
    return new_state


async def _defer(
    conn: asyncpg.Connection,
    *,
    account: str,
    alert: Any,
    policy: dict[str, Any],
    state: engine.State,
    now: datetime,
    exc: Exception,
) -> engine.State:
    attempt = 1 + await conn.fetchval(
        "SELECT count(*) FROM np_oncall.alert_events WHERE alert_id = $1 "
        "AND kind = 'escalation_failed' AND details @> $2::jsonb",
        alert["id"],
        {"step": state.step, "loop": state.loop},
    )
    retry_at = now + retry_delay(attempt)
    if isinstance(exc, ApiError):
        error: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.details is not None:
            error["details"] = exc.details
        log.warning(
            "escalation of alert %s (account %r) failed, attempt %d, retry at %s: %s",
            alert["id"],
            account,
            attempt,
            retry_at.isoformat(),
            exc.message,
        )
    else:
        error = {"code": "internal", "message": exc.__class__.__name__}
        log.exception(
            "escalation of alert %s (account %r) failed, attempt %d, retry at %s",
            alert["id"],
            account,
            attempt,
            retry_at.isoformat(),
        )
    await conn.execute(
        """
        WITH timeline AS (
            INSERT INTO np_oncall.alert_events (source_account_id, alert_id, at, kind, details)
            VALUES ($1, $2, $6, 'escalation_failed', $7)
        )
        INSERT INTO np_oncall.escalations
            (source_account_id, alert_id, policy, next_step, loop, next_at)
        VALUES ($1, $2, $3, $4, $5, $8)
        ON CONFLICT (source_account_id, alert_id) DO UPDATE
        SET next_step = EXCLUDED.next_step, loop = EXCLUDED.loop, next_at = EXCLUDED.next_at
        """,
        account,
        alert["id"],
        policy,
        state.step,
        state.loop,
        now,
        {
            "step": state.step,
            "loop": state.loop,
            "attempt": attempt,
            "retry_at": retry_at.isoformat(),
            "error": error,
        },
        retry_at,
    )
    ALERTS.labels("escalation_failed").inc()
    return engine.State(state.step, state.loop, retry_at)


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
            # one alert's failure is recorded on its timeline and retried later:
            # the loop goes on to the other due alerts (and accounts)
            await escalate_isolated(
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
