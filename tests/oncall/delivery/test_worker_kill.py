"""Must show (issue 12): a worker killed with leased notifications.

A real worker process (`worker_process.py`, the production loop) delivers to a
real HTTP sink that records every request with its `Idempotency-Key`, and is
killed with SIGKILL while notifications are leased: some answered and
recorded, some received but not answered (in flight), one to a destination
that never answers. Restarted (its clock past the leases), it delivers every
notification; the only duplicates carry the same key and body. The one that
never answers is killed on its last attempt too; the next worker ends it
`failed_permanent` instead of sending it a third time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.common import db
from tests.conftest import REPO_ROOT, auth_headers
from tests.oncall.helpers import FakeClock, read_request, webhook_responders

ACCOUNT = "acct-killed"
H = auth_headers(ACCOUNT)
LEASE_SECONDS = 40.0
SEND_SECONDS = 20.0  # the hanging send outlives every phase: it only ends by a kill
MAX_ATTEMPTS = 2
ANSWERED_FIRST = 5  # then the sink holds its answers until released
NOTIFICATIONS = 20


@dataclass
class Request:
    path: str
    key: str
    attempt: str
    body: bytes
    answered: bool = False


@dataclass
class KillSink:
    """A real HTTP server: `/kill-ok` answers the first few at once, then holds its
    answers until `release`; `/kill-hang` never answers."""

    requests: list[Request] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    async def start(self) -> KillSink:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in self._handlers:
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            line, headers, body = await read_request(reader)
            path = line.split(" ")[1]
            request = Request(path, headers["idempotency-key"], headers["x-nsentry-attempt"], body)
            self.requests.append(request)
            if path == "/kill-hang":
                await asyncio.Event().wait()  # never answers
            if len([r for r in self.to(path) if r.answered]) >= ANSWERED_FIRST:
                await self.release.wait()
            request.answered = True
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._handlers.discard(task)


@pytest.fixture
async def kill_sink() -> AsyncIterator[KillSink]:
    sink = await KillSink().start()
    yield sink
    sink.release.set()
    await sink.stop()


class WorkerProcess:
    """`python -m tests.oncall.delivery.worker_process` against the test's database."""

    def __init__(self, database_url: str, log: Path, skew_seconds: float) -> None:
        config = {
            "database_url": database_url,
            "lease_seconds": LEASE_SECONDS,
            "send_seconds": SEND_SECONDS,
            "max_attempts": MAX_ATTEMPTS,
            "concurrency": 4,
            "per_origin": 4,
            "skew_seconds": skew_seconds,
        }
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.oncall.delivery.worker_process", json.dumps(config)],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        assert await asyncio.to_thread(self.process.wait, 30) == -signal.SIGKILL

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(self.process.wait, 30)


async def until(
    what: str, check: Callable[[], Awaitable[bool]], log: Path, seconds: float = 60.0
) -> None:
    """Wait for a real process to reach a state (polled: it runs on the wall clock)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)  # noqa: ASYNC110 - a state in another process
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{tail(log)}")


def tail(log: Path) -> str:
    return log.read_text()[-4000:]


async def test_a_killed_worker_loses_nothing_and_sends_duplicates_only_with_the_same_key(
    client: httpx.AsyncClient,
    database_url: str,
    kill_sink: KillSink,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    await webhook_responders(client, kill_sink, ("kill-hang", "kill-ok"), H)  # type: ignore[arg-type]
    hang = await alert(client, "kill-hang", "never answered")
    clock.advance(seconds=1)  # the oldest notification: in the first claim
    oks = [await alert(client, "kill-ok", f"delivered {i}") for i in range(NOTIFICATIONS)]
    pool = await db.create_pool(database_url, role=db.WORKER_ROLE, min_size=0)
    log = tmp_path / "worker.log"
    workers: list[WorkerProcess] = []
    keys: dict[str, str] = {}

    async def statuses() -> dict[str, int]:
        return await count_statuses(pool)

    try:
        # 1. the first worker: 5 answered and recorded, 3 held in flight, the hang in flight
        workers.append(WorkerProcess(database_url, log, skew_seconds=0))

        async def leased_in_flight() -> bool:
            held = [r for r in kill_sink.to("/kill-ok") if not r.answered]
            return (
                len(held) == 3
                and len(kill_sink.to("/kill-hang")) == 1
                and (await statuses()).get("sent", 0) == ANSWERED_FIRST
            )

        await until("sends in flight", leased_in_flight, log)
        assert (await statuses())["sending"] == 4  # the leased ones
        await workers[-1].kill()
        kill_sink.release.set()

        # 2. restarted after the leases ran out: everything is delivered but the hang,
        # which is sent again (its last attempt) and hangs again; killed once more
        workers.append(WorkerProcess(database_url, log, skew_seconds=LEASE_SECONDS + 1))

        async def all_but_the_hang_sent() -> bool:
            found = await statuses()
            return found.get("sent") == NOTIFICATIONS and len(kill_sink.to("/kill-hang")) == 2

        await until("every notification delivered", all_but_the_hang_sent, log)
        assert (await statuses()) == {"sent": NOTIFICATIONS, "sending": 1}
        await workers[-1].kill()

        # 3. the next worker finds the hang leased out on its last attempt: failed for good
        workers.append(WorkerProcess(database_url, log, skew_seconds=2 * (LEASE_SECONDS + 1)))

        async def hang_failed() -> bool:
            return (await statuses()).get("failed_permanent") == 1

        await until("the stuck notification to fail for good", hang_failed, log)
        await workers[-1].stop()
        assert workers[-1].process.returncode == 0
        keys = await notification_keys(pool)
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
                await asyncio.to_thread(worker.process.wait, 30)
        await pool.close()

    assert len(kill_sink.to("/kill-hang")) == MAX_ATTEMPTS  # never a third time
    delivered = {r.key for r in kill_sink.to("/kill-ok") if r.answered}
    assert delivered == {keys[a["id"]] for a in oks}  # every notification, once answered
    by_key: dict[str, list[Request]] = defaultdict(list)
    for request in kill_sink.requests:
        by_key[request.key].append(request)
    assert set(by_key) == set(keys.values())  # no request without a notification's key
    for requests in by_key.values():  # duplicates: same key, same body, later attempt
        assert len({r.body for r in requests}) == 1 and len({r.path for r in requests}) == 1
        assert [r.attempt for r in requests] == [str(n) for n in range(1, len(requests) + 1)]
    copies = Counter(len(rs) for rs in by_key.values())
    assert copies == {1: NOTIFICATIONS - 3, 2: 4}  # the three held, and the hang

    hang_detail = (await client.get(f"/api/v1/alerts/{hang['id']}", headers=H)).json()
    [notification] = hang_detail["notifications"]
    assert (notification["status"], notification["attempts"]) == ("failed_permanent", 2)
    assert hang_detail["timeline"][-1]["kind"] == "notification_failed_permanent"
    assert "Traceback" not in tail(log), tail(log)


async def alert(client: httpx.AsyncClient, policy: str, summary: str) -> dict[str, Any]:
    body = {"policy_id": policy, "summary": summary}
    response = await client.post("/api/v1/alerts", json=body, headers=H)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def count_statuses(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT status, count(*) AS n FROM np_oncall.notifications "
        "WHERE source_account_id = $1 GROUP BY status",
        ACCOUNT,
    )
    return {r["status"]: r["n"] for r in rows}


async def notification_keys(pool: asyncpg.Pool) -> dict[str, str]:
    """The idempotency key of each alert's (one) notification."""
    rows = await pool.fetch(
        "SELECT alert_id::text AS alert_id, idempotency_key FROM np_oncall.notifications "
        "WHERE source_account_id = $1",
        ACCOUNT,
    )
    return {r["alert_id"]: r["idempotency_key"] for r in rows}
