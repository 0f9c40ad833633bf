"""``nsentry bench remote-write``: a remote-write burst against raw COPY (SPEC section 9).

In one run, on a scratch database (a fresh one on the server of
``DATABASE_URL``, or an embedded Postgres in a temporary folder), dropped at
the end:

1. **Remote write**: ``--detectors`` detectors (the default ``auto``
   algorithm, ``group_by: ["instance"]``), each with a ``remote_write`` source
   selecting its own shard of one metric (``bench_metric{shard="<d>"}``), and
   ``--series`` series spread over them; ``--samples`` samples in all (the
   default: 100,000 over 1,000 series into 10 detectors), sent to
   ``POST /api/v1/write`` of nself-anomaly served by uvicorn in a child process
   (real HTTP, as Prometheus reaches it; in-process ASGI would share one core
   and one GIL between the load generator and the service and measure
   neither). The requests are shaped as Prometheus 2.x sends them: snappy
   protobuf ``WriteRequest`` s of ``--per-request`` samples (remote write's
   default ``max_samples_per_send``, 2,000), one ``TimeSeries`` per sample with
   its full label set, in scrape order (every series' sample of one scrape,
   then the next scrape's). ``--shards`` as Prometheus' shards: each series
   belongs to one shard, each shard sends its own series' samples in order over
   its own keep-alive connection, the shards at once (default 1, remote write's
   ``min_shards``; Prometheus adds shards when it falls behind, and with more
   shards a request holds more samples of fewer series). Bodies are built
   before timing.
2. **Raw COPY**: the very rows the service stored, copied with asyncpg's
   binary ``COPY`` into an identically indexed table (``CREATE TABLE ... (LIKE
   np_anomaly_data_points INCLUDING ALL)``), in batches of ``--per-request``
   rows, one transaction each.

The service answers a request once it is stored in its inbox and scores it
moments later (``services/anomaly/remote_write/inbox.py``): the time measured runs
from the first request until the inbox is empty, every sample scored. It checks
that every sample was stored and scored (a point per sample, each
with a score, a learned model per series) and exits 1 otherwise. Goal: the
samples/s of 1. at least 0.3 of the rows/s of 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import asyncpg
import cramjam
import numpy as np

from bench.ingest import Connection, http_post
from bench.kit import copy_rows, scratch_database, uvicorn_process
from services.anomaly.remote_write.proto.remote_pb2 import WriteRequest

ACCOUNT = "bench"
METRIC = "bench_metric"
SCRAPE_MS = 15_000  # Prometheus' default scrape interval
START_MS = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
GOAL = 0.3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options on ``parser``."""
    parser.add_argument("--samples", type=int, default=100_000, help="samples in all")
    parser.add_argument("--series", type=int, default=1_000, help="series (label sets)")
    parser.add_argument("--detectors", type=int, default=10, help="remote_write detectors")
    parser.add_argument(
        "--per-request",
        type=int,
        default=2_000,
        help="samples per WriteRequest (Prometheus' max_samples_per_send, default 2,000)",
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=1,
        help="Prometheus' shards: each sends its own series' samples, in order, over its "
        "own connection, all at once (default 1, remote write's min_shards)",
    )
    parser.add_argument("--algorithm", default="auto", help="detector algorithm (default auto)")
    parser.add_argument(
        "--model-cache",
        type=int,
        default=None,
        help="the service's ANOMALY_MODEL_CACHE (default: the service's own default)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="server for the scratch database (default: DATABASE_URL, else embedded)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")


# -- the load --------------------------------------------------------------------
def series_labels(series: int, detectors: int) -> list[list[tuple[str, str]]]:
    """Each series' labels (sorted, as Prometheus sends them): series ``s`` is instance
    ``i<s>`` of shard ``s % detectors``, so the detectors get a near-equal share."""
    return [
        [
            ("__name__", METRIC),
            ("instance", f"i{s:05d}"),
            ("job", "bench"),
            ("shard", str(s % detectors)),
        ]
        for s in range(series)
    ]


def sample_values(series: int, scrapes: int, seed: int = 7) -> np.ndarray:
    """``values[scrape, series]``: noise around a level per series, with a spike in
    every 50th series now and then (so that some points are anomalies)."""
    rng = np.random.default_rng(seed)
    levels = 100.0 + 10.0 * (np.arange(series) % 17)
    values = rng.normal(levels, 2.0, (scrapes, series))
    if scrapes > 10:
        spiked = np.arange(0, series, 50)
        values[(scrapes * 3) // 4, spiked] += 60.0
    return values


def shard_of(series: int, shards: int, seed: int = 7) -> np.ndarray:
    """Each series' shard: Prometheus hashes a series' labels to one of its shards (so
    a series' samples stay in order); here a seeded draw, uncorrelated with the shard
    label that picks the detector."""
    return np.random.default_rng(seed + 1).integers(0, shards, series)


def bodies(
    samples: int, series: int, detectors: int, per_request: int, shards: int = 1, seed: int = 7
) -> list[list[bytes]]:
    """Each shard's snappy ``WriteRequest`` bodies, in the order Prometheus would send
    them: its series' samples scrape after scrape, one ``TimeSeries`` (full labels, one
    sample) per sample, ``per_request`` samples a request."""
    labels = series_labels(series, detectors)
    scrapes = -(-samples // series)
    values = sample_values(series, scrapes, seed)
    owner = shard_of(series, shards, seed)
    out: list[list[bytes]] = [[] for _ in range(shards)]
    requests = [WriteRequest() for _ in range(shards)]
    pending = [0] * shards

    def flush(k: int) -> None:
        out[k].append(bytes(cramjam.snappy.compress_raw(requests[k].SerializeToString())))
        requests[k] = WriteRequest()
        pending[k] = 0

    for n in range(samples):
        scrape, s = divmod(n, series)
        k = int(owner[s])
        entry = requests[k].timeseries.add()
        for name, value in labels[s]:
            entry.labels.add(name=name, value=value)
        entry.samples.add(value=float(values[scrape, s]), timestamp=START_MS + scrape * SCRAPE_MS)
        pending[k] += 1
        if pending[k] == per_request:
            flush(k)
    for k in range(shards):
        if pending[k]:
            flush(k)
    return [b for b in out if b]


def write_request_bytes(path: str, body: bytes, secret: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {secret}\r\nX-Hasura-Source-Account-Id: {ACCOUNT}\r\n"
        "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n"
        f"X-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# -- measurements ----------------------------------------------------------------
@dataclass
class Result:
    samples: int
    series: int
    detectors: int
    requests: int
    shards: int
    algorithm: str
    model_cache: int | None
    remote_write_samples_per_s: float
    copy_rows_per_s: float
    stored: int
    scored: int
    models: int
    anomalies: int
    request_p50_ms: float
    request_p99_ms: float

    @property
    def ratio(self) -> float:
        return self.remote_write_samples_per_s / self.copy_rows_per_s


async def _create_detectors(port: int, secret: str, args: argparse.Namespace) -> None:
    conn = await Connection.open(port)
    try:
        for d in range(args.detectors):
            detector = {
                "id": f"rw-{d:03d}",
                "name": f"remote write shard {d}",
                "algorithm": args.algorithm,
                "metric_source": {"type": "remote_write", "match": f'{METRIC}{{shard="{d}"}}'},
                "group_by": ["instance"],
                "max_series": max(1_000, args.series),
            }
            status, answer = await conn.send(
                http_post("/api/v1/detectors", json.dumps(detector).encode(), secret)
            )
            if status != 201:
                raise RuntimeError(f"creating rw-{d:03d}: {status} {answer[:200]!r}")
    finally:
        conn.close()


async def _send(
    port: int, secret: str, shards: list[list[bytes]], dsn: str
) -> tuple[float, list[float]]:
    """Send every shard's bodies over its own connection, in order, the shards at once,
    and wait until the service has scored them all (its inbox is empty): seconds from
    the first request until then, and the requests' latencies."""
    latencies: list[float] = []
    done = [0]
    total = sum(len(b) for b in shards)
    step = max(1, total // 10)

    async def sender(payloads: list[bytes]) -> None:
        conn = await Connection.open(port)
        try:
            for body in payloads:
                sent = time.perf_counter()
                status, answer = await conn.send(write_request_bytes("/api/v1/write", body, secret))
                if status != 204:
                    raise RuntimeError(f"remote write: {status} {answer[:300]!r}")
                latencies.append(time.perf_counter() - sent)
                done[0] += 1
                if done[0] % step == 0:
                    print(f"  {done[0]}/{total} requests", flush=True)
        finally:
            conn.close()

    watcher = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await asyncio.gather(*(sender(payloads) for payloads in shards))
        answered = time.perf_counter()
        # the service's drain runs in its own process: look every 10 ms
        while True:
            if not await watcher.fetchval("SELECT EXISTS (SELECT FROM np_anomaly_write_inbox)"):
                break
            await asyncio.sleep(0.01)
        finished = time.perf_counter()
    finally:
        await watcher.close()
    print(
        f"  every request answered after {answered - started:.2f} s, "
        f"every sample scored after {finished - started:.2f} s",
        flush=True,
    )
    return finished - started, latencies


async def _check(dsn: str, samples_per_series: int) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS stored, count(score) AS scored, "
            "count(*) FILTER (WHERE is_anomaly) AS anomalies "
            "FROM np_anomaly_data_points WHERE source_account_id = $1",
            ACCOUNT,
        )
        models = await conn.fetchval(
            "SELECT count(*) FROM np_anomaly_series WHERE source_account_id = $1 "
            "AND points_count >= $2",
            ACCOUNT,
            samples_per_series,
        )
    finally:
        await conn.close()
    return {**dict(row), "models": int(models)}


def _ms(latencies: list[float], q: float) -> float:
    return float(np.quantile(np.asarray(latencies), q)) * 1000.0 if latencies else float("nan")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print both rates and their ratio; 1 if a sample was lost."""
    if min(args.samples, args.series, args.detectors, args.per_request, args.shards) < 1:
        raise SystemExit("nsentry bench remote-write: every size must be at least 1")
    if args.samples % args.series:
        raise SystemExit("nsentry bench remote-write: --samples must be a multiple of --series")
    secret = secrets.token_urlsafe(32)
    shards = bodies(args.samples, args.series, args.detectors, args.per_request, args.shards)
    payloads = [b for shard in shards for b in shard]
    wire = sum(len(b) for b in payloads)
    print(
        f"nsentry bench remote-write: {args.samples:,} samples over {args.series:,} series "
        f"into {args.detectors} detectors ({args.algorithm}), {len(payloads)} requests "
        f"of {args.per_request:,} samples ({wire / len(payloads) / 1024:.0f} KiB each, snappy)",
        flush=True,
    )
    print("preparing a scratch database", flush=True)
    env = {
        "PLUGIN_SECRET": secret,
        "NSELF_LICENSE_SKIP_VERIFY": "1",
        "LOG_LEVEL": "warning",
        # the samples are of January 2026: out of reach of the retention job
        "ANOMALY_RETENTION_DAYS": "36500",
    }
    if args.model_cache is not None:
        env["ANOMALY_MODEL_CACHE"] = str(args.model_cache)
    with scratch_database(args.database_url) as dsn:
        with uvicorn_process(
            "services.anomaly.app:create_app", {**env, "DATABASE_URL": dsn}
        ) as port:
            asyncio.run(_create_detectors(port, secret, args))
            print(f"remote write: {len(shards)} shard(s), a connection each", flush=True)
            seconds, latencies = asyncio.run(_send(port, secret, shards, dsn))
        checked = asyncio.run(_check(dsn, args.samples // args.series))
        print("raw COPY of the stored rows", flush=True)
        copy_s, copied = asyncio.run(copy_rows(dsn, args.per_request))
    result = Result(
        samples=args.samples,
        series=args.series,
        detectors=args.detectors,
        requests=len(payloads),
        shards=len(shards),
        algorithm=args.algorithm,
        model_cache=args.model_cache,
        remote_write_samples_per_s=args.samples / seconds,
        copy_rows_per_s=copied / copy_s,
        stored=checked["stored"],
        scored=checked["scored"],
        models=checked["models"],
        anomalies=checked["anomalies"],
        request_p50_ms=_ms(latencies, 0.5),
        request_p99_ms=_ms(latencies, 0.99),
    )
    complete = result.stored == result.scored == args.samples and result.models == args.series
    _report(result, complete, args.json)
    return 0 if complete else 1


def _report(r: Result, complete: bool, as_json: bool) -> None:
    verdict = "ok" if r.ratio >= GOAL else "BELOW GOAL"
    print()
    print(f"remote write ({r.algorithm}):        {r.remote_write_samples_per_s:12,.0f} samples/s")
    print(f"raw asyncpg COPY, same rows:  {r.copy_rows_per_s:12,.0f} rows/s")
    print(f"  ratio {r.ratio:.2f} (goal >= {GOAL}: {verdict})")
    print(
        f"  per request of {r.samples // r.requests:,} samples: "
        f"p50 {r.request_p50_ms:.0f} ms, p99 {r.request_p99_ms:.0f} ms"
    )
    print(
        f"  stored {r.stored:,}, scored {r.scored:,} of {r.samples:,} samples; "
        f"{r.models:,} of {r.series:,} series learned every sample; anomalies {r.anomalies}"
        + ("" if complete else "  INCOMPLETE")
    )
    if as_json:
        print(json.dumps({**asdict(r), "ratio": r.ratio, "complete": complete}))
