"""Container health checks of the ɳSentry image (standard library and asyncpg only).

    python /app/deploy/healthcheck.py http://127.0.0.1:3842/ready   # a service
    python /app/deploy/healthcheck.py --database                      # the worker

A service is healthy when its `/ready` answers 200 (migrations applied, database
reachable). The worker has no port: it is healthy when its database answers and
the migrations it needs are recorded. Exit 0 when healthy, 1 otherwise, with one
line saying why.
"""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 4.0


def check_url(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            if response.status == 200:
                return None
            return f"{url} answered {response.status}"
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code}"
    except OSError as exc:
        return f"{url} unreachable: {exc}"


async def _check_database(dsn: str) -> str | None:
    import asyncpg

    try:
        conn = await asyncpg.connect(dsn, timeout=TIMEOUT_SECONDS)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"database unreachable: {exc.__class__.__name__}"
    try:
        applied = await conn.fetchval(
            "SELECT count(*) FROM hdb_catalog.schema_migrations WHERE NOT dirty"
        )
    except asyncpg.PostgresError as exc:
        return f"migrations not recorded yet: {exc.__class__.__name__}"
    finally:
        await conn.close()
    return None if applied else "no migration applied yet"


def check_database() -> str | None:
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        return "DATABASE_URL is not set"
    return asyncio.run(_check_database(dsn))


def main(argv: list[str]) -> int:
    if argv == ["--database"]:
        problem = check_database()
    elif len(argv) == 1 and argv[0].startswith(("http://", "https://")):
        problem = check_url(argv[0])
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
