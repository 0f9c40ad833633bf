"""``nsentry bench ingest``: HTTP ingest throughput against its baselines (SPEC section 9).

Side by side in one run, on a scratch database (a fresh one on the server of
``DATABASE_URL``, or an embedded Postgres in a temporary folder), dropped at
the end:

1. **Bulk**: ``--batches`` HTTP requests of ``--batch-size`` points spread
   over ``--detectors`` detectors (the default ``auto`` algorithm), scored and
   stored by nself-anomaly served by uvicorn in a child process; against raw
   asyncpg ``COPY`` of the very rows it stored into an identically indexed
   table (``CREATE TABLE ... (LIKE np_anomaly_data_points INCLUDING ALL)``),
   in batches of the same size. Target: ratio >= 0.5.
2. **Single point**: ``--connections`` keep-alive connections sending one
   point per request for ``--seconds`` (each connection feeds its own
   detector, so no request waits on another's detector lock), against a bare
   FastAPI endpoint with a pydantic body under the same uvicorn settings (one
   worker, uvloop, httptools; the service with its default pool size, as
   deployed). Target: ratio >= 0.5 and p99 < 50 ms.

The load generator is a minimal HTTP/1.1 keep-alive client on asyncio streams
(httpx would be the bottleneck); request bodies are built before timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import AwareDatetime, BaseModel

from bench.kit import copy_rows, scratch_database, uvicorn_process

ACCOUNT = "bench"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options on ``parser``."""
    parser.add_argument("--batches", type=int, default=20, help="bulk requests (default 20)")
    parser.add_argument("--batch-size", type=int, default=10_000, help="points per request")
    parser.add_argument("--detectors", type=int, default=100, help="detectors in each batch")
    parser.add_argument("--algorithm", default="auto", help="detector algorithm (default auto)")
    parser.add_argument("--connections", type=int, default=64, help="single-point connections")
    parser.add_argument("--seconds", type=float, default=10.0, help="single-point duration")
    parser.add_argument("--warmup-seconds", type=float, default=2.0, help="before measuring")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="server for the scratch database (default: DATABASE_URL, else embedded)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")


# -- the bare baseline ---------------------------------------------------------
class BarePoint(BaseModel):
    detector_id: str
    value: float
    timestamp: AwareDatetime


def bare_app() -> FastAPI:
    """A FastAPI endpoint with the same pydantic body and nothing behind it."""
    app = FastAPI()

    @app.post("/api/v1/ingest")
    async def ingest(point: BarePoint) -> dict[str, Any]:
        return {"accepted": 1, "duplicates": 0, "late": 0, "anomalies": []}

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


# -- a minimal keep-alive HTTP/1.1 client ----------------------------------------
class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def http_post(path: str, body: bytes, secret: str, account: str = ACCOUNT) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {secret}\r\nX-Hasura-Source-Account-Id: {account}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# -- measurements ---------------------------------------------------------------
@dataclass
class Result:
    bulk_points_per_s: float
    copy_rows_per_s: float
    single_rps: float
    single_p50_ms: float
    single_p99_ms: float
    bare_rps: float
    bare_p99_ms: float
    anomalies: int

    @property
    def bulk_ratio(self) -> float:
        return self.bulk_points_per_s / self.copy_rows_per_s

    @property
    def single_ratio(self) -> float:
        return self.single_rps / self.bare_rps


async def _create_detectors(port: int, secret: str, ids: list[str], algorithm: str) -> None:
    conn = await Connection.open(port)
    try:
        for detector_id in ids:
            body = json.dumps({"id": detector_id, "name": detector_id, "algorithm": algorithm})
            status, answer = await conn.send(http_post("/api/v1/detectors", body.encode(), secret))
            if status != 201:
                raise RuntimeError(f"creating {detector_id}: {status} {answer[:200]!r}")
    finally:
        conn.close()


def _bulk_bodies(args: argparse.Namespace, ids: list[str], start: datetime) -> list[bytes]:
    rng = np.random.default_rng(7)
    per = args.batch_size // len(ids)
    bodies = []
    for b in range(args.batches):
        points = []
        for k, detector_id in enumerate(ids):
            base = 100.0 + 10.0 * k
            values = rng.normal(base, 2.0, per)
            if b % 5 == 4:
                values[per // 2] = base + 40.0  # now and then a spike
            for j in range(per):
                ts = start + timedelta(seconds=60 * (b * per + j))
                points.append(
                    {
                        "detector_id": detector_id,
                        "value": float(values[j]),
                        "timestamp": ts.isoformat(),
                    }
                )
        bodies.append(json.dumps({"points": points}).encode())
    return bodies


async def _bulk(port: int, secret: str, bodies: list[bytes]) -> tuple[float, int, int]:
    conn = await Connection.open(port)
    accepted = anomalies = 0
    try:
        started = time.perf_counter()
        for body in bodies:
            status, answer = await conn.send(http_post("/api/v1/ingest", body, secret))
            if status != 200:
                raise RuntimeError(f"bulk ingest: {status} {answer[:300]!r}")
            result = json.loads(answer)
            accepted += result["accepted"]
            anomalies += len(result["anomalies"])
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    return elapsed, accepted, anomalies


async def _single(
    port: int,
    secret: str,
    detector_ids: list[str],
    *,
    connections: int,
    seconds: float,
    warmup: float,
    start: datetime,
) -> tuple[float, list[float]]:
    """Requests/s and latencies (s) of single-point ingest over `connections` connections."""
    latencies: list[float] = []
    counts = [0]
    stop_at = [0.0]
    measuring = [False]

    async def worker(c: int) -> None:
        conn = await Connection.open(port)
        detector_id = detector_ids[c % len(detector_ids)]
        i = 0
        try:
            while time.perf_counter() < stop_at[0]:
                ts = (start + timedelta(seconds=i)).isoformat()
                value = 100.0 + (i % 7)
                body = (
                    f'{{"detector_id":"{detector_id}","value":{value},"timestamp":"{ts}"}}'
                ).encode()
                sent = time.perf_counter()
                status, answer = await conn.send(http_post("/api/v1/ingest", body, secret))
                if status != 200:
                    raise RuntimeError(f"single ingest: {status} {answer[:300]!r}")
                if measuring[0]:
                    latencies.append(time.perf_counter() - sent)
                    counts[0] += 1
                i += 1
        finally:
            conn.close()

    stop_at[0] = time.perf_counter() + warmup + seconds
    tasks = [asyncio.create_task(worker(c)) for c in range(connections)]
    await asyncio.sleep(warmup)
    measuring[0] = True
    began = time.perf_counter()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    return counts[0] / elapsed, latencies


def _p(latencies: list[float], q: float) -> float:
    if not latencies:
        return float("nan")
    return float(np.quantile(np.asarray(latencies), q)) * 1000.0


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; prints ratios against the targets. Returns 0."""
    secret = secrets.token_urlsafe(32)
    print("nsentry bench ingest: preparing a scratch database", flush=True)
    with scratch_database(args.database_url) as dsn:
        env = {
            "DATABASE_URL": dsn,
            "PLUGIN_SECRET": secret,
            "NSELF_LICENSE_SKIP_VERIFY": "1",
            "LOG_LEVEL": "warning",
            # the points are of January 2026: out of reach of the retention job
            "ANOMALY_RETENTION_DAYS": "36500",
        }
        ids = [f"bulk-{k:03d}" for k in range(args.detectors)]
        singles = [f"one-{k:03d}" for k in range(args.connections)]
        start = datetime(2026, 1, 1, tzinfo=UTC)
        bodies = _bulk_bodies(args, ids, start)
        with uvicorn_process("services.anomaly.app:create_app", env) as port:
            asyncio.run(_create_detectors(port, secret, ids + singles, args.algorithm))
            print(
                f"bulk: {args.batches} x {args.batch_size} points over {args.detectors} detectors",
                flush=True,
            )
            bulk_s, accepted, anomalies = asyncio.run(_bulk(port, secret, bodies))
            print(f"single point: {args.connections} connections, {args.seconds:g}s", flush=True)
            single_rps, single_lat = asyncio.run(
                _single(
                    port,
                    secret,
                    singles,
                    connections=args.connections,
                    seconds=args.seconds,
                    warmup=args.warmup_seconds,
                    start=start,
                )
            )
        copy_s, copied = asyncio.run(copy_rows(dsn, args.batch_size))
        with uvicorn_process("bench.ingest:bare_app", env) as port:
            bare_rps, bare_lat = asyncio.run(
                _single(
                    port,
                    secret,
                    singles,
                    connections=args.connections,
                    seconds=args.seconds,
                    warmup=args.warmup_seconds,
                    start=start,
                )
            )
    result = Result(
        bulk_points_per_s=accepted / bulk_s,
        copy_rows_per_s=copied / copy_s,
        single_rps=single_rps,
        single_p50_ms=_p(single_lat, 0.5),
        single_p99_ms=_p(single_lat, 0.99),
        bare_rps=bare_rps,
        bare_p99_ms=_p(bare_lat, 0.99),
        anomalies=anomalies,
    )
    _report(result, args)
    return 0


def _report(r: Result, args: argparse.Namespace) -> None:
    def verdict(ok: bool) -> str:
        return "ok" if ok else "BELOW TARGET"

    print()
    print(f"bulk HTTP ingest ({args.algorithm}): {r.bulk_points_per_s:12,.0f} points/s")
    print(f"raw asyncpg COPY, same rows:  {r.copy_rows_per_s:12,.0f} rows/s")
    print(f"  ratio {r.bulk_ratio:.2f} (target >= 0.5: {verdict(r.bulk_ratio >= 0.5)})")
    print(f"single-point HTTP ingest:     {r.single_rps:12,.0f} requests/s")
    print(f"bare FastAPI endpoint:        {r.bare_rps:12,.0f} requests/s")
    print(f"  ratio {r.single_ratio:.2f} (target >= 0.5: {verdict(r.single_ratio >= 0.5)})")
    print(
        f"  ingest latency p50 {r.single_p50_ms:.1f} ms, p99 {r.single_p99_ms:.1f} ms "
        f"(target p99 < 50 ms: {verdict(r.single_p99_ms < 50)}); bare p99 {r.bare_p99_ms:.1f} ms"
    )
    print(f"  anomalies found in the bulk run: {r.anomalies}")
    if args.json:
        print(
            json.dumps(
                {
                    **r.__dict__,
                    "bulk_ratio": r.bulk_ratio,
                    "single_ratio": r.single_ratio,
                }
            )
        )
