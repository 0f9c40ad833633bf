"""`nsentry bench remote-write` end to end on a small burst: it stores and scores every
sample through the service and measures raw COPY of the same rows; and the bodies are
shaped as Prometheus sends them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import cramjam

from bench.remote_write import START_MS, bodies
from services.anomaly.remote_write.proto.remote_pb2 import WriteRequest
from services.common.embedded import EmbeddedPostgres
from tests.conftest import REPO_ROOT


def decoded(body: bytes) -> WriteRequest:
    request = WriteRequest()
    request.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
    return request


def test_bodies_are_prometheus_shaped() -> None:
    shards = bodies(samples=600, series=100, detectors=3, per_request=250, shards=2)
    assert len(shards) == 2
    sent = [decoded(b) for shard in shards for b in shard]
    assert all(len(r.timeseries) <= 250 for r in sent)
    entries = [ts for r in sent for ts in r.timeseries]
    assert len(entries) == 600  # one TimeSeries per sample, its labels in full
    assert all(len(ts.samples) == 1 for ts in entries)
    labels = [tuple((lb.name, lb.value) for lb in ts.labels) for ts in entries]
    assert len(set(labels)) == 100
    assert {dict(lb)["shard"] for lb in labels} == {"0", "1", "2"}
    # a series stays in one shard, its samples in time order
    owner: dict[tuple[tuple[str, str], ...], int] = {}
    last: dict[tuple[tuple[str, str], ...], int] = {}
    for k, shard in enumerate(shards):
        for b in shard:
            for ts in decoded(b).timeseries:
                key = tuple((lb.name, lb.value) for lb in ts.labels)
                assert owner.setdefault(key, k) == k
                assert ts.samples[0].timestamp > last.get(key, START_MS - 1)
                last[key] = ts.samples[0].timestamp


async def test_bench_remote_write_stores_scores_and_measures_copy(
    pg_server: EmbeddedPostgres,
) -> None:
    command = [
        sys.executable, "-m", "services.cli", "bench", "remote-write",
        "--samples", "1200", "--series", "60", "--detectors", "3", "--per-request", "400",
        "--shards", "2", "--database-url", pg_server.uri(), "--json",
    ]  # fmt: skip
    result = await asyncio.to_thread(
        subprocess.run, command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["complete"] is True
    assert measured["stored"] == measured["scored"] == 1200
    assert measured["models"] == 60  # every series learned each of its samples
    assert measured["remote_write_samples_per_s"] > 0 and measured["copy_rows_per_s"] > 0
    assert measured["ratio"] == measured["remote_write_samples_per_s"] / measured["copy_rows_per_s"]
    assert "raw asyncpg COPY" in result.stdout and "requests" in result.stdout
