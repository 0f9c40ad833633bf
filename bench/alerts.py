"""`nsentry bench alerts`: many alerts at once, every first page to a real webhook sink.

SPEC section 9: 1,000 alerts triggered at once; every first notification
reaches a local webhook sink, p99 under 2 s from trigger. The on-call service
and the worker run as they do in production (their own processes, uvicorn, a
real Postgres); the sink and the load run here, on one clock, so the latency
of an alert is the time from sending its `POST /api/v1/alerts` to its webhook
arriving at the sink.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from bench.kit import scratch_database, uvicorn_process

ACCOUNT = "bench"
TARGET_P99_SECONDS = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alerts", type=int, default=1000, help="alerts to trigger (default 1000)")
    parser.add_argument(
        "--concurrency", type=int, default=100, help="alert requests in flight (default 100)"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after (seconds)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="server for the scratch database (default: DATABASE_URL, else embedded)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")


@dataclass
class Sink:
    """A minimal real HTTP/1.1 server that timestamps every webhook by its dedup key."""

    arrivals: dict[str, float] = field(default_factory=dict)
    requests: int = 0
    port: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                arrived = time.monotonic()
                self.requests += 1
                key = json.loads(body).get("alert", {}).get("dedup_key")
                if key is not None and key not in self.arrivals:
                    self.arrivals[key] = arrived
                    if len(self.arrivals) >= self.expected:
                        self.done.set()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the worker closed its connection, or the benchmark is over
        finally:
            writer.close()


@contextmanager
def worker_processes(count: int, env: dict[str, str]) -> Iterator[None]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "services.cli", "worker"], env={**os.environ, **env}
        )
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


async def _prepare(client: httpx.AsyncClient, sink_url: str) -> str:
    person = await client.post(
        "/api/v1/people",
        json={
            "id": "bench-responder",
            "name": "Bench Responder",
            "contact_methods": [
                {
                    "type": "webhook",
                    "url": sink_url,
                    # the benchmark measures delivery, not the flood protection
                    "rate_limit": {"max": 100000, "per_seconds": 60},
                }
            ],
        },
    )
    person.raise_for_status()
    policy = await client.post(
        "/api/v1/policies",
        json={
            "id": "bench-policy",
            "name": "bench",
            "steps": [
                {"delay_minutes": 15, "targets": [{"type": "person", "id": "bench-responder"}]}
            ],
        },
    )
    policy.raise_for_status()
    return "bench-policy"


class _Connection:
    """One keep-alive HTTP/1.1 connection of the load side, one request at a time.

    The load runs on the same two cores as the service, the worker and
    Postgres; httpx's connection pool costs CPU per request that grows with
    the number of connections (over 80% of this process at 100 in flight), so
    the alerts go out on plain sockets, like the sink answers on them.
    """

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: dict) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        body = json.dumps(payload).encode()
        self.writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{self.head}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise RuntimeError("chunked answers are not expected from the alerts route")
        if length is None:
            raise RuntimeError("an answer without Content-Length")
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()


async def _trigger(
    port: int, headers: dict[str, str], policy: str, count: int, concurrency: int
) -> tuple[dict[str, float], dict[str, float]]:
    """POST `count` alerts, `concurrency` in flight; when each was sent and answered."""
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    pending = iter(range(count))

    async def lane() -> None:
        connection = _Connection(port, headers)
        try:
            for i in pending:
                key = f"bench-{i}"
                sent[key] = time.monotonic()
                status, body = await connection.post(
                    "/api/v1/alerts",
                    {
                        "policy_id": policy,
                        "summary": f"bench alert {i}",
                        "dedup_key": key,
                        "severity": "critical",
                        "source": "bench",
                    },
                )
                answered[key] = time.monotonic()
                if status != 201:
                    raise RuntimeError(f"alert {i}: {status} {body[:200]!r}")
        finally:
            await connection.close()

    await asyncio.gather(*(lane() for _ in range(min(count, concurrency))))
    return sent, answered


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(args: argparse.Namespace, oncall_port: int, sink: Sink, secret: str) -> dict:
    headers = {"Authorization": f"Bearer {secret}", "X-Hasura-Source-Account-Id": ACCOUNT}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{oncall_port}", headers=headers, timeout=60, trust_env=False
    ) as client:
        policy = await _prepare(client, f"http://127.0.0.1:{sink.port}/page")
    print(f"triggering {args.alerts} alerts ({args.concurrency} in flight)...", flush=True)
    started = time.monotonic()
    sent, answered = await _trigger(oncall_port, headers, policy, args.alerts, args.concurrency)
    triggered = time.monotonic() - started
    print(f"  all {args.alerts} accepted in {triggered:.2f} s; waiting for the pages", flush=True)
    try:
        await asyncio.wait_for(sink.done.wait(), timeout=args.timeout)
    except TimeoutError:
        pass
    latencies = [sink.arrivals[k] - sent[k] for k in sent if k in sink.arrivals]
    answers = [answered[k] - sent[k] for k in sent]
    return {
        "alerts": args.alerts,
        "delivered": len(latencies),
        "webhook_requests": sink.requests,
        "trigger_seconds": triggered,
        "all_delivered_seconds": (max(sink.arrivals.values()) - started) if latencies else None,
        "p50_seconds": _quantile(latencies, 0.50) if latencies else None,
        "p99_seconds": _quantile(latencies, 0.99) if latencies else None,
        "max_seconds": max(latencies) if latencies else None,
        "answer_p50_seconds": _quantile(answers, 0.50),
        "answer_p99_seconds": _quantile(answers, 0.99),
    }


def run(args: argparse.Namespace) -> int:
    if args.alerts < 1 or args.concurrency < 1 or args.workers < 1:
        print(
            "nsentry bench alerts: --alerts, --concurrency and --workers must be positive",
            file=sys.stderr,
        )
        return 2
    secret = secrets.token_urlsafe(32)
    print("nsentry bench alerts: preparing a scratch database", flush=True)
    with scratch_database(args.database_url) as dsn:
        result = asyncio.run(_run(args, dsn, secret))
    _report(result)
    if args.json:
        print(json.dumps(result))
    complete = result["delivered"] == result["alerts"]
    return 0 if complete else 1


async def _run(args: argparse.Namespace, dsn: str, secret: str) -> dict:
    sink = Sink(expected=args.alerts)
    server = await sink.start()
    env = {
        "DATABASE_URL": dsn,
        "PLUGIN_SECRET": secret,
        "NSELF_LICENSE_SKIP_VERIFY": "1",
        "ONCALL_ALLOWED_DESTINATIONS": "127.0.0.1",
        "WEBHOOK_SIGNING_SECRET": secrets.token_urlsafe(32),
        "LOG_LEVEL": "warning",
        "DB_POOL_MAX": "20",
    }
    try:
        # the service and workers are blocking context managers around subprocesses
        with (
            uvicorn_process("services.oncall.app:create_app", env) as port,
            worker_processes(args.workers, env),
        ):
            return await _measure(args, port, sink, secret)
    finally:
        server.close()


def _report(r: dict) -> None:
    print(
        f"\n{r['alerts']} alerts triggered in {r['trigger_seconds']:.2f} s; "
        f"{r['delivered']} first pages delivered ({r['webhook_requests']} webhook requests)"
    )
    if r["p99_seconds"] is None:
        print("  no page arrived")
        return
    verdict = "meets" if r["p99_seconds"] < TARGET_P99_SECONDS else "BELOW"
    print(
        f"  trigger -> webhook latency p50 {r['p50_seconds'] * 1000:.0f} ms, "
        f"p99 {r['p99_seconds'] * 1000:.0f} ms, max {r['max_seconds'] * 1000:.0f} ms "
        f"(target p99 < {TARGET_P99_SECONDS:.0f} s: {verdict} target)"
    )
    print(
        f"  POST /api/v1/alerts answered p50 {r['answer_p50_seconds'] * 1000:.0f} ms, "
        f"p99 {r['answer_p99_seconds'] * 1000:.0f} ms"
    )
    print(f"  every page delivered {r['all_delivered_seconds']:.2f} s after the first trigger")
