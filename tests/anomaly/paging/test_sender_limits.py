"""The page sender on the shared outbox rules: Retry-After, permanent statuses, and the
attempt limit of a page whose sender keeps dying (failed_permanent, logged, counted)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import count

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from services.anomaly.paging.sender import PageSender
from services.common import db
from services.common.outbox import Lease, RetryPolicy
from services.common.settings import Settings
from tests.conftest import PLUGIN_SECRET

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
LEASE = Lease(timedelta(seconds=60))
_keys = count()


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(settings.database_url or "", role=db.WORKER_ROLE, min_size=0)
    yield pool
    await pool.close()


class Answering:
    """A real HTTP server answering every request with one status and headers."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}
        self.requests: list[str] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> Answering:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length = next(
            (int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:")), 0
        )
        await reader.readexactly(length)
        self.requests.append(head[0])
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        writer.write(
            f"HTTP/1.1 {self.status} X\r\n{extra}Content-Length: 2\r\n"
            "Connection: close\r\n\r\n{}".encode()
        )
        await writer.drain()
        writer.close()


async def queue_page(pool: asyncpg.Pool, account: str) -> tuple[int, str]:
    key = f"anomaly:{account}:d:{next(_keys)}"
    row_id = await pool.fetchval(
        "INSERT INTO np_anomaly_page_outbox (source_account_id, kind, detector_id, policy_id, "
        "dedup_key, episode_start, severity, summary, next_attempt_at) "
        "VALUES ($1, 'open', 'd', 'ops', $2, $3, 'critical', 'test page', $3) RETURNING id",
        account,
        key,
        NOW,
    )
    return int(row_id), key


async def page(pool: asyncpg.Pool, row_id: int) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM np_anomaly_page_outbox WHERE id = $1", row_id)
    assert row is not None
    return row


def pages_counted(status: str) -> float:
    value = REGISTRY.get_sample_value("nsentry_pages_total", {"kind": "open", "status": status})
    return value or 0.0


def sender(
    pool: asyncpg.Pool, url: str, client: httpx.AsyncClient, **options: object
) -> PageSender:
    return PageSender(
        pool,
        oncall_url=url,
        secret=PLUGIN_SECRET,
        client=client,
        rng=random.Random(0),
        lease=LEASE,
        **options,  # type: ignore[arg-type]
    )


async def test_a_page_whose_sender_dies_on_its_last_attempt_fails_for_good(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    row_id, key = await queue_page(pool, "acct-dying")
    retry = RetryPolicy(base=timedelta(seconds=2), cap=timedelta(minutes=5), max_attempts=2)

    def die(_request: httpx.Request) -> httpx.Response:
        raise RuntimeError("the sender process dies mid-send")

    async with httpx.AsyncClient(transport=httpx.MockTransport(die)) as dying:
        for attempt, at in enumerate((NOW, NOW + timedelta(seconds=61)), start=1):
            with pytest.raises(RuntimeError):
                await sender(pool, "http://oncall.invalid", dying, retry=retry).run_once(at)
            row = await page(pool, row_id)
            assert (row["status"], row["attempts"]) == ("pending", attempt)

    before = pages_counted("failed_permanent")
    async with Answering(201) as oncall, httpx.AsyncClient() as http:
        healthy = sender(pool, oncall.url, http, retry=retry)
        with caplog.at_level(logging.ERROR, logger="nsentry.anomaly.paging"):
            report = await healthy.run_once(NOW + timedelta(seconds=122))
        assert (report.claimed, report.sent, report.failed) == (1, 0, 1)
        assert oncall.requests == []  # not attempted a third time
        assert (await healthy.run_once(NOW + timedelta(days=1))).claimed == 0
    row = await page(pool, row_id)
    assert (row["status"], row["attempts"]) == ("failed_permanent", 2)
    assert "attempt limit (2) reached" in row["last_error"]
    assert pages_counted("failed_permanent") == before + 1
    assert any(
        key in r.getMessage() and "failed for good" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "120"}, 120.0),
        (
            {
                "Retry-After": "Thu, 03 Dec 2026 12:01:30 GMT",
                "Date": "Thu, 03 Dec 2026 12:00:00 GMT",
            },
            90.0,
        ),
        ({"Retry-After": "86400"}, 300.0),  # capped at the policy's cap
    ],
)
async def test_retry_after_is_honoured(
    pool: asyncpg.Pool, headers: dict[str, str], wait: float
) -> None:
    row_id, _ = await queue_page(pool, "acct-retry-after")
    async with Answering(503, headers) as oncall, httpx.AsyncClient() as http:
        report = await sender(pool, oncall.url, http).run_once(NOW)
    assert (report.claimed, report.retried) == (1, 1)
    row = await page(pool, row_id)
    assert row["status"] == "pending" and row["response_status"] == 503
    assert row["next_attempt_at"] == NOW + timedelta(seconds=wait)
    await pool.execute("DELETE FROM np_anomaly_page_outbox WHERE id = $1", row_id)


@pytest.mark.parametrize(
    ("status", "final"), [(302, "failed_permanent"), (422, "failed_permanent")]
)
async def test_statuses_that_can_never_succeed_fail_for_good(
    pool: asyncpg.Pool, status: int, final: str
) -> None:
    row_id, _ = await queue_page(pool, "acct-refused")
    before = pages_counted(final)
    async with Answering(status, {"Location": "http://elsewhere.invalid/"}) as oncall:
        async with httpx.AsyncClient() as http:
            report = await sender(pool, oncall.url, http).run_once(NOW)
    assert (report.claimed, report.failed) == (1, 1)
    row = await page(pool, row_id)
    assert (row["status"], row["response_status"]) == (final, status)
    assert pages_counted(final) == before + 1
