"""What the benchmarks share: a scratch database and services run as in production.

`scratch_database` gives a fresh migrated database (on DATABASE_URL's server or a
private embedded one) and drops it afterwards; `uvicorn_process` runs an app
factory under uvicorn in its own process, as `nsentry serve` would, and waits
for `/ready`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from services.common import db, migrations
from services.common.settings import DEFAULT_MIGRATIONS_DIR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def uvicorn_process(factory: str, env: dict[str, str]) -> Iterator[int]:
    port = free_port()
    # both servers alike: one worker, uvloop and httptools (named, so that a missing one
    # fails instead of silently measuring the slower fallback), no access log
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b" 200 " in s.recv(200):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{factory} did not become ready")
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def scratch_database(server_url: str | None) -> Iterator[str]:
    """A fresh, migrated database (dropped afterwards); embedded when no server is given."""
    name = f"nsentry_bench_{secrets.token_hex(4)}"
    embedded = None
    tmp = None
    if server_url is None:
        from services.common.embedded import EmbeddedPostgres

        tmp = tempfile.TemporaryDirectory(prefix="nsentry-bench-")
        os.chmod(tmp.name, 0o755)  # the embedded server may run as another user
        embedded = EmbeddedPostgres(Path(tmp.name))
        admin_url = embedded.uri()
    else:
        admin_url = server_url

    async def create() -> str:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        dsn = embedded.uri(name) if embedded else _with_database(admin_url, name)
        owner = await db.connect(dsn)
        try:
            await migrations.migrate_up(owner, DEFAULT_MIGRATIONS_DIR)
        finally:
            await owner.close()
        return dsn

    async def drop() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    try:
        yield asyncio.run(create())
    finally:
        try:
            asyncio.run(drop())
        finally:
            if embedded is not None:
                embedded.stop()
            if tmp is not None:
                tmp.cleanup()


def _with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def copy_rows(dsn: str, batch_size: int) -> tuple[float, int]:
    """Seconds to COPY the stored points (every column but ``id``) into an identically
    indexed table, ``batch_size`` rows per transaction, and how many rows."""
    conn = await asyncpg.connect(dsn)
    # binary COPY needs a binary jsonb codec (version byte 1, then the JSON text)
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: b"\x01" + json.dumps(v).encode(),
        decoder=lambda b: json.loads(b[1:]),
        schema="pg_catalog",
        format="binary",
    )
    try:
        columns = [
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = 'np_anomaly_data_points' "
                "AND column_name <> 'id' AND is_generated = 'NEVER' ORDER BY ordinal_position"
            )
        ]
        await conn.execute("DROP TABLE IF EXISTS bench_copy")
        await conn.execute("CREATE TABLE bench_copy (LIKE np_anomaly_data_points INCLUDING ALL)")
        listed = ", ".join(f'"{c}"' for c in columns)
        rows = [
            tuple(r)
            for r in await conn.fetch(
                f"SELECT {listed} FROM np_anomaly_data_points ORDER BY id"  # noqa: S608
            )
        ]
        started = time.perf_counter()
        for i in range(0, len(rows), batch_size):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "bench_copy", records=rows[i : i + batch_size], columns=columns
                )
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE bench_copy")
    finally:
        await conn.close()
    return elapsed, len(rows)
