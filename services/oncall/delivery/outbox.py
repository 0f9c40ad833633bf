"""The notification outbox: claim due rows, record each attempt's outcome.

States: `pending` → `sending` (claimed, leased) → `sent`; or `failed`
(another attempt at `not_before`, exponential backoff with jitter) until the
attempt limit, then `failed_permanent` (also at once for a 4xx or a refused
address); `cancelled` when the alert was acknowledged or resolved first.
The rules (outcomes, backoff, `Retry-After`, the attempt limit, the lease) are
`services.common.outbox`'s, shared with nself-anomaly's page sender; the SQL
is here.

Claims use FOR UPDATE SKIP LOCKED, so several workers never claim the same
row. A claim is a lease: a `sending` row whose worker died is claimed again
once `lease_until` passes, and sent again with the same idempotency key
(at-least-once), unless that was its last attempt: then it is
`failed_permanent` (a notification whose send kills its worker every time
still ends). A late report from the first worker is ignored (its claim token
no longer matches).

An acknowledgement racing a claim: right before claimed rows are sent (after
the claim committed, one statement per batch), :func:`go_ahead` reads their
alerts under a share lock (so an ack in progress is waited for, then seen)
and cancels a row whose alert is no longer triggered, or skips one whose
claim token no longer matches. A send never starts after an ack committed;
one that started before may still finish.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.common.metrics import NOTIFICATIONS
from services.common.outbox import Lease
from services.common.outbox import RetryPolicy as RetryPolicy  # the on-call defaults
from services.oncall.delivery import ratelimit
from services.oncall.delivery.channels import Message, Result
from services.oncall.delivery.go_ahead import Verdict as Verdict
from services.oncall.delivery.go_ahead import go_ahead as go_ahead

_ORIGIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")


def origin_of(destination: str) -> str:
    """The scheme and authority of a URL destination, lower-cased ("" for an email
    address): the unit of the per-origin bound on sends in flight. The same
    expression as the claim's SQL, so the two agree on every row."""
    match = _ORIGIN.match(destination)
    return match.group(0).lower() if match else ""


@dataclass(frozen=True)
class Claimed:
    account: str
    id: uuid.UUID
    alert_id: uuid.UUID
    channel: str
    destination: str
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int
    claim_token: uuid.UUID
    person_id: str = ""
    created_at: datetime | None = None
    # the contact method's signing secret (webhook, Slack); never logged (repr=False)
    signing_secret: str | None = field(default=None, repr=False)

    def message(self, links: Mapping[str, str] | None = None) -> Message:
        return Message(
            notification_id=str(self.id),
            idempotency_key=self.idempotency_key,
            channel=self.channel,
            destination=self.destination,
            payload=self.payload,
            attempt=self.attempts,
            signing_secret=self.signing_secret,
            links=links,
        )


_CANDIDATES = """
SELECT n.source_account_id, n.id, n.alert_id, n.channel, n.destination, n.rate_limit,
       n.status, n.attempts, a.status AS alert_status, n.person_id, n.created_at,
       (SELECT s.secret FROM np_oncall.contact_secrets s
        WHERE n.channel IN ('webhook', 'slack')
          AND s.source_account_id = n.source_account_id AND s.person_id = n.person_id
          AND s.contact_method_id = coalesce(n.contact_method_id, (
              -- a row queued before contact methods had ids: its method by destination
              SELECT m ->> 'id'
              FROM np_oncall.people p
              CROSS JOIN LATERAL jsonb_array_elements(
                  CASE WHEN jsonb_typeof(p.contact_methods) = 'array'
                       THEN p.contact_methods ELSE '[]' END) AS m
              WHERE p.source_account_id = n.source_account_id AND p.id = n.person_id
                AND m ->> 'type' = n.channel AND m ->> 'url' = n.destination
              LIMIT 1))) AS signing_secret
FROM np_oncall.notifications n
JOIN np_oncall.alerts a ON a.source_account_id = n.source_account_id AND a.id = n.alert_id
WHERE ((n.status IN ('pending', 'failed') AND n.not_before <= $1)
       OR (n.status = 'sending' AND n.lease_until <= $1))
  AND coalesce(lower(substring(n.destination FROM '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*')), '')
      <> ALL($3::text[])
ORDER BY n.not_before
LIMIT $2
FOR UPDATE OF n SKIP LOCKED
"""

# Create the missing buckets and lock them all in one pass, in one order (so two
# workers never deadlock): a no-op update locks an existing row like FOR UPDATE.
_LOCK_BUCKETS = """
INSERT INTO np_oncall.rate_limits AS r (source_account_id, bucket, tokens, updated_at)
SELECT u.a, u.b, u.t, $4
FROM unnest($1::text[], $2::text[], $3::float8[]) AS u(a, b, t)
ORDER BY u.a, u.b
ON CONFLICT (source_account_id, bucket) DO UPDATE SET tokens = r.tokens
RETURNING r.source_account_id, r.bucket, r.tokens, r.updated_at
"""

# The rest of a claim in one statement: rows of closed alerts cancelled, rows
# out of attempts failed for good, buckets written back, rows over their rate
# limit deferred, the others leased, and the timeline. The rows were locked by
# _CANDIDATES in this transaction.
_CLAIM_WRITE = """
WITH cancelled AS (
    UPDATE np_oncall.notifications n
    SET status = 'cancelled', updated_at = $1, lease_until = NULL
    FROM unnest($2::text[], $3::uuid[]) AS u(a, i)
    WHERE n.source_account_id = u.a AND n.id = u.i
), spent AS (
    UPDATE np_oncall.notifications n
    SET status = 'failed_permanent', updated_at = $1, lease_until = NULL, last_error = $23
    FROM unnest($21::text[], $22::uuid[]) AS u(a, i)
    WHERE n.source_account_id = u.a AND n.id = u.i
), buckets AS (
    UPDATE np_oncall.rate_limits r SET tokens = u.t, updated_at = u.s
    FROM unnest($4::text[], $5::text[], $6::float8[], $7::timestamptz[]) AS u(a, b, t, s)
    WHERE r.source_account_id = u.a AND r.bucket = u.b
), deferred AS (
    UPDATE np_oncall.notifications n
    SET status = 'pending', not_before = u.t, lease_until = NULL, updated_at = $1
    FROM unnest($8::text[], $9::uuid[], $10::timestamptz[]) AS u(a, i, t)
    WHERE n.source_account_id = u.a AND n.id = u.i
), timeline AS (
    INSERT INTO np_oncall.alert_events
        (source_account_id, alert_id, at, kind, notification_id, details)
    SELECT e.a, e.alert, $1, e.k, e.i, e.d
    FROM unnest($11::text[], $12::uuid[], $13::text[], $14::uuid[], $15::jsonb[])
         WITH ORDINALITY AS e(a, alert, k, i, d, ord)
    ORDER BY e.ord
)
UPDATE np_oncall.notifications n
SET status = 'sending', attempts = n.attempts + 1, lease_until = $16,
    claim_token = u.t, claimed_by = $17, updated_at = $1
FROM unnest($18::text[], $19::uuid[], $20::uuid[]) AS u(a, i, t)
WHERE n.source_account_id = u.a AND n.id = u.i
RETURNING n.source_account_id, n.id, n.idempotency_key, n.payload, n.attempts, n.claim_token
"""


# why a row out of attempts that is due again is not sent: its last attempt was
# claimed, and its worker stopped before recording an outcome (the lease ran out)
UNREPORTED = "attempt limit reached: the last attempt's worker stopped before reporting"


async def claim(
    pool: asyncpg.Pool,
    *,
    now: datetime,
    limit: int,
    lease: timedelta,
    worker_id: str,
    in_flight: Mapping[str, int] | None = None,
    per_origin: int | None = None,
    retry: RetryPolicy | None = None,
) -> tuple[list[Claimed], int]:
    """Lease up to `limit` due notifications; also returns how many due rows were examined.

    Rows whose alert was acknowledged or resolved meanwhile are cancelled, rows
    whose attempts are used up (`retry`; a `sending` row whose worker died on its
    last attempt) are failed for good, rows over their rate limit wait for their
    next token; none of them is returned. One transaction of at most three
    statements whatever the batch size.

    With `per_origin`, at most that many sends go to one origin (`origin_of`) at
    once, counting the caller's `in_flight` ones: rows of an origin already at
    its bound are not examined, and a batch takes no more of one origin than
    its room (the others stay due, untouched, for a later claim).
    """
    busy: list[str] = []
    if per_origin is not None:
        busy = sorted(o for o, n in (in_flight or {}).items() if o and n >= per_origin)
    async with pool.acquire() as conn, conn.transaction():
        candidates = await conn.fetch(_CANDIDATES, now, limit, busy)
        if not candidates:
            return [], 0
        policy = retry or RetryPolicy()
        closed = [r for r in candidates if r["alert_status"] != "triggered"]
        live = [r for r in candidates if r["alert_status"] == "triggered"]
        spent = [r for r in live if policy.exhausted(r["attempts"])]
        live = [r for r in live if not policy.exhausted(r["attempts"])]
        if per_origin is not None:
            counts = dict(in_flight or {})
            room: list[Any] = []
            for r in live:
                origin = origin_of(r["destination"])
                if origin and counts.get(origin, 0) >= per_origin:
                    continue  # left as it is (its lock ends with this transaction)
                counts[origin] = counts.get(origin, 0) + 1
                room.append(r)
            live = room
        events: list[tuple[Any, ...]] = []
        for r in closed:
            events.append(_event(r, now, "notification_cancelled", alert_status=r["alert_status"]))
        for r in spent:
            events.append(
                _event(
                    r,
                    now,
                    "notification_failed_permanent",
                    attempt=r["attempts"],
                    channel=r["channel"],
                    gave_up_after=r["attempts"],
                    error=UNREPORTED,
                )
            )

        keyed = {
            r["id"]: (r["source_account_id"], ratelimit.bucket_key(r["channel"], r["destination"]))
            for r in live
        }
        limits = {keyed[r["id"]]: ratelimit.Limit.of(r["channel"], r["rate_limit"]) for r in live}
        state: dict[tuple[str, str], tuple[float, datetime]] = {}
        if live:
            keys = sorted(limits)
            rows = await conn.fetch(
                _LOCK_BUCKETS,
                [k[0] for k in keys],
                [k[1] for k in keys],
                [float(limits[k].max) for k in keys],
                now,
            )
            state = {
                (r["source_account_id"], r["bucket"]): (r["tokens"], r["updated_at"]) for r in rows
            }
        leased: list[Any] = []
        deferred: list[tuple[Any, datetime]] = []
        for r in live:
            key = keyed[r["id"]]
            tokens, stamp = state[key]
            decision = ratelimit.take(limits[key], tokens, stamp, now)
            state[key] = (decision.tokens, decision.updated_at)
            if decision.allowed:
                leased.append(r)
            else:
                deferred.append((r, now + decision.wait))
        for r, retry_at in deferred:
            events.append(
                _event(r, now, "notification_rate_limited", retry_at=retry_at.isoformat())
            )
        for r in leased:
            if r["status"] == "sending":
                events.append(_event(r, now, "notification_reclaimed", attempt=r["attempts"] + 1))

        keys = sorted(state)
        tokens = [uuid.uuid4() for _ in leased]
        rows = await conn.fetch(
            _CLAIM_WRITE,
            now,
            [r["source_account_id"] for r in closed],
            [r["id"] for r in closed],
            [k[0] for k in keys],
            [k[1] for k in keys],
            [state[k][0] for k in keys],
            [state[k][1] for k in keys],
            [r["source_account_id"] for r, _ in deferred],
            [r["id"] for r, _ in deferred],
            [t for _, t in deferred],
            [e[0] for e in events],
            [e[1] for e in events],
            [e[3] for e in events],
            [e[4] for e in events],
            [e[5] for e in events],
            Lease(lease).until(now),
            worker_id,
            [r["source_account_id"] for r in leased],
            [r["id"] for r in leased],
            tokens,
            [r["source_account_id"] for r in spent],
            [r["id"] for r in spent],
            UNREPORTED,
        )
    for r in closed:
        NOTIFICATIONS.labels(r["channel"], "cancelled").inc()
    for r in spent:
        NOTIFICATIONS.labels(r["channel"], "failed_permanent").inc()
    for r, _ in deferred:
        NOTIFICATIONS.labels(r["channel"], "rate_limited").inc()
    updated = {(u["source_account_id"], u["id"]): u for u in rows}
    claimed: list[Claimed] = []
    for r in leased:
        u = updated[(r["source_account_id"], r["id"])]
        claimed.append(
            Claimed(
                account=r["source_account_id"],
                id=r["id"],
                alert_id=r["alert_id"],
                channel=r["channel"],
                destination=r["destination"],
                idempotency_key=u["idempotency_key"],
                payload=u["payload"],
                attempts=u["attempts"],
                claim_token=u["claim_token"],
                person_id=r["person_id"],
                created_at=r["created_at"],
                signing_secret=r["signing_secret"],
            )
        )
    return claimed, len(candidates)


def _event(row: Any, at: datetime, kind: str, **details: Any) -> tuple[Any, ...]:
    return (row["source_account_id"], row["alert_id"], at, kind, row["id"], details)


async def finish(
    pool: asyncpg.Pool,
    item: Claimed,
    result: Result,
    *,
    now: datetime,
    retry: RetryPolicy,
    rng: random.Random,
) -> str | None:
    """Record one attempt's outcome; None when the lease was lost to another worker."""
    [status] = await finish_many(pool, [(item, result)], now=now, retry=retry, rng=rng)
    return status


# A batch's outcomes in one statement (atomic on its own, no transaction block):
# only rows still leased with the caller's claim token change, and only those
# get their timeline entry.
_FINISH = """
WITH done AS (
    UPDATE np_oncall.notifications n
    SET status = u.s, not_before = coalesce(u.nb, n.not_before), lease_until = NULL,
        last_error = u.e, last_status_code = u.c, updated_at = $8,
        sent_at = CASE WHEN u.s = 'sent' THEN $8 ELSE n.sent_at END
    FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[],
                $6::text[], $7::int[]) AS u(a, i, t, s, nb, e, c)
    WHERE n.source_account_id = u.a AND n.id = u.i AND n.claim_token = u.t
      AND n.status = 'sending'
    RETURNING n.source_account_id, n.id
), timeline AS (
    INSERT INTO np_oncall.alert_events
        (source_account_id, alert_id, at, kind, notification_id, details)
    SELECT e.a, e.alert, $8, e.k, e.i, e.d
    FROM unnest($1::text[], $2::uuid[], $9::uuid[], $10::text[], $11::jsonb[])
         WITH ORDINALITY AS e(a, i, alert, k, d, ord)
    WHERE (e.a, e.i) IN (SELECT source_account_id, id FROM done)
    ORDER BY e.ord
)
SELECT source_account_id, id FROM done
"""


async def finish_many(
    pool: asyncpg.Pool,
    outcomes: list[tuple[Claimed, Result]],
    *,
    now: datetime,
    retry: RetryPolicy,
    rng: random.Random,
) -> list[str | None]:
    """Record the outcomes of a batch in one statement; per item its new status, or None
    when its lease was lost to another worker (whose report then counts)."""
    planned: list[tuple[Claimed, str, datetime | None, dict[str, Any], Result]] = []
    for item, result in outcomes:
        details: dict[str, Any] = {"attempt": item.attempts, "channel": item.channel}
        if result.status_code is not None:
            details["status_code"] = result.status_code
        if result.error:
            details["error"] = result.error
        if result.outcome in ("cancelled", "lost"):
            continue  # settled before the send (go_ahead): nothing to record
        decision = retry.decide(
            result.outcome, item.attempts, now=now, rng=rng, retry_after=result.retry_after
        )
        status = "failed" if decision.verdict == "retry" else decision.verdict
        if decision.retry_at is not None:
            details["retry_at"] = decision.retry_at.isoformat()
        elif status == "failed_permanent" and result.outcome == "retry":
            details["gave_up_after"] = item.attempts
        planned.append((item, status, decision.retry_at, details, result))
    if not planned:
        return [finish_status(result) for _, result in outcomes]
    done_rows = await pool.fetch(
        _FINISH,
        [p[0].account for p in planned],
        [p[0].id for p in planned],
        [p[0].claim_token for p in planned],
        [p[1] for p in planned],
        [p[2] for p in planned],
        [p[4].error for p in planned],
        [p[4].status_code for p in planned],
        now,
        [p[0].alert_id for p in planned],
        [f"notification_{p[1]}" for p in planned],
        [p[3] for p in planned],
    )
    done = {(r["source_account_id"], r["id"]) for r in done_rows}
    recorded: dict[tuple[str, uuid.UUID], str] = {}
    for item, status, *_ in planned:
        if (item.account, item.id) in done:
            NOTIFICATIONS.labels(item.channel, status).inc()
            recorded[(item.account, item.id)] = status
    return [
        recorded.get((item.account, item.id))
        if result.outcome not in ("cancelled", "lost")
        else finish_status(result)
        for item, result in outcomes
    ]


def finish_status(result: Result) -> str | None:
    """The status of a result settled before its send: `cancelled`, or None (lost)."""
    return "cancelled" if result.outcome == "cancelled" else None
