"""The notification outbox: claim due rows, record each attempt's outcome.

States: `pending` → `sending` (claimed, leased) → `sent`; or `failed`
(another attempt at `not_before`, exponential backoff with jitter) until the
attempt limit, then `failed_permanent` (also at once for a 4xx or a refused
address); `cancelled` when the alert was acknowledged or resolved first.

Claims use FOR UPDATE SKIP LOCKED, so several workers never claim the same
row. A claim is a lease: a `sending` row whose worker died is claimed again
once `lease_until` passes, and sent again with the same idempotency key
(at-least-once). A late report from the first worker is ignored (its claim
token no longer matches).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.common.metrics import NOTIFICATIONS
from services.oncall.delivery import ratelimit
from services.oncall.delivery.channels import Message, Result
from services.oncall.timeline import record


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with "equal jitter": half fixed, half random."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 8

    def delay(
        self, attempt: int, rng: random.Random, retry_after: float | None = None
    ) -> timedelta:
        raw = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        delay = raw / 2 + raw / 2 * rng.random()
        if retry_after is not None:
            delay = max(delay, min(self.cap, timedelta(seconds=retry_after)))
        return delay


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

    def message(self) -> Message:
        return Message(
            notification_id=str(self.id),
            idempotency_key=self.idempotency_key,
            channel=self.channel,
            destination=self.destination,
            payload=self.payload,
            attempt=self.attempts,
        )


_CANDIDATES = """
SELECT n.source_account_id, n.id, n.alert_id, n.channel, n.destination, n.rate_limit,
       n.status, a.status AS alert_status
FROM np_oncall.notifications n
JOIN np_oncall.alerts a ON a.source_account_id = n.source_account_id AND a.id = n.alert_id
WHERE (n.status IN ('pending', 'failed') AND n.not_before <= $1)
   OR (n.status = 'sending' AND n.lease_until <= $1)
ORDER BY n.not_before
LIMIT $2
FOR UPDATE OF n SKIP LOCKED
"""


async def _take_token(conn: asyncpg.Connection, row: Any, now: datetime) -> ratelimit.Decision:
    account = row["source_account_id"]
    key = ratelimit.bucket_key(row["channel"], row["destination"])
    limit = ratelimit.Limit.of(row["channel"], row["rate_limit"])
    await conn.execute(
        "INSERT INTO np_oncall.rate_limits (source_account_id, bucket, tokens, updated_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        account,
        key,
        float(limit.max),
        now,
    )
    bucket = await conn.fetchrow(
        "SELECT tokens, updated_at FROM np_oncall.rate_limits "
        "WHERE source_account_id = $1 AND bucket = $2 FOR UPDATE",
        account,
        key,
    )
    decision = ratelimit.take(limit, bucket["tokens"], bucket["updated_at"], now)
    await conn.execute(
        "UPDATE np_oncall.rate_limits SET tokens = $3, updated_at = $4 "
        "WHERE source_account_id = $1 AND bucket = $2",
        account,
        key,
        decision.tokens,
        decision.updated_at,
    )
    return decision


async def claim(
    pool: asyncpg.Pool, *, now: datetime, limit: int, lease: timedelta, worker_id: str
) -> tuple[list[Claimed], int]:
    """Lease up to `limit` due notifications; also returns how many due rows were examined.

    Rows whose alert was acknowledged or resolved meanwhile are cancelled, rows
    over their rate limit wait for their next token; neither is returned.
    """
    claimed: list[Claimed] = []
    async with pool.acquire() as conn, conn.transaction():
        candidates = await conn.fetch(_CANDIDATES, now, limit)
        for row in candidates:
            account, nid = row["source_account_id"], row["id"]
            if row["alert_status"] != "triggered":
                await conn.execute(
                    "UPDATE np_oncall.notifications SET status = 'cancelled', updated_at = $3, "
                    "lease_until = NULL WHERE source_account_id = $1 AND id = $2",
                    account,
                    nid,
                    now,
                )
                await record(
                    conn,
                    account=account,
                    alert_id=row["alert_id"],
                    at=now,
                    kind="notification_cancelled",
                    notification_id=nid,
                    details={"alert_status": row["alert_status"]},
                )
                NOTIFICATIONS.labels(row["channel"], "cancelled").inc()
                continue
            decision = await _take_token(conn, row, now)
            if not decision.allowed:
                retry_at = now + decision.wait
                await conn.execute(
                    "UPDATE np_oncall.notifications SET status = 'pending', not_before = $3, "
                    "lease_until = NULL, updated_at = $4 "
                    "WHERE source_account_id = $1 AND id = $2",
                    account,
                    nid,
                    retry_at,
                    now,
                )
                await record(
                    conn,
                    account=account,
                    alert_id=row["alert_id"],
                    at=now,
                    kind="notification_rate_limited",
                    notification_id=nid,
                    details={"retry_at": retry_at.isoformat()},
                )
                NOTIFICATIONS.labels(row["channel"], "rate_limited").inc()
                continue
            token = uuid.uuid4()
            leased = await conn.fetchrow(
                """
                UPDATE np_oncall.notifications
                SET status = 'sending', attempts = attempts + 1, lease_until = $3,
                    claim_token = $4, claimed_by = $5, updated_at = $6
                WHERE source_account_id = $1 AND id = $2
                RETURNING idempotency_key, payload, attempts
                """,
                account,
                nid,
                now + lease,
                token,
                worker_id,
                now,
            )
            if row["status"] == "sending":
                await record(
                    conn,
                    account=account,
                    alert_id=row["alert_id"],
                    at=now,
                    kind="notification_reclaimed",
                    notification_id=nid,
                    details={"attempt": leased["attempts"]},
                )
            claimed.append(
                Claimed(
                    account=account,
                    id=nid,
                    alert_id=row["alert_id"],
                    channel=row["channel"],
                    destination=row["destination"],
                    idempotency_key=leased["idempotency_key"],
                    payload=leased["payload"],
                    attempts=leased["attempts"],
                    claim_token=token,
                )
            )
    return claimed, len(candidates)


async def finish(
    pool: asyncpg.Pool,
    item: Claimed,
    result: Result,
    *,
    now: datetime,
    retry: RetryPolicy,
    rng: random.Random,
) -> str | None:
    """Record the attempt's outcome; None when the lease was lost to another worker."""
    details: dict[str, Any] = {"attempt": item.attempts, "channel": item.channel}
    if result.status_code is not None:
        details["status_code"] = result.status_code
    if result.error:
        details["error"] = result.error
    not_before = None
    if result.outcome == "sent":
        status = "sent"
    elif result.outcome == "retry" and item.attempts < retry.max_attempts:
        status = "failed"
        not_before = now + retry.delay(item.attempts, rng, result.retry_after)
        details["retry_at"] = not_before.isoformat()
    else:
        status = "failed_permanent"
        if result.outcome == "retry":
            details["gave_up_after"] = item.attempts
    async with pool.acquire() as conn, conn.transaction():
        updated = await conn.fetchval(
            """
            UPDATE np_oncall.notifications
            SET status = $4, not_before = coalesce($5, not_before), lease_until = NULL,
                last_error = $6, last_status_code = $7, updated_at = $8,
                sent_at = CASE WHEN $4 = 'sent' THEN $8 ELSE sent_at END
            WHERE source_account_id = $1 AND id = $2 AND claim_token = $3 AND status = 'sending'
            RETURNING true
            """,
            item.account,
            item.id,
            item.claim_token,
            status,
            not_before,
            result.error,
            result.status_code,
            now,
        )
        if not updated:
            return None
        await record(
            conn,
            account=item.account,
            alert_id=item.alert_id,
            at=now,
            kind=f"notification_{status}",
            notification_id=item.id,
            details=details,
        )
    NOTIFICATIONS.labels(item.channel, status).inc()
    return status
