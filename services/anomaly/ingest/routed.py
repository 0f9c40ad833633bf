"""Points routed from a wire format to the detectors whose ``metric_source`` names it.

Remote write (``POST /api/v1/write``) and OTLP (``POST /v1/metrics``) do the same
after decoding: read the account's enabled detectors of their source type, let a
pure ``route`` turn the request into points for them, and feed the points to the
same ``Ingestor`` as ``POST /api/v1/ingest``, as one batch of every detector's
points in one transaction (the ingestor locks the detector rows first, in id
order, then their series; all or nothing: a retried request finds its points
stored and counts them as duplicates). A detector deleted or disabled between
reading the sources and locking the rows (404, 409, 422 from the ingestor) is
dropped by reading the sources again, once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import asyncpg

from services.anomaly.ingest.outcome import IngestOutcome
from services.anomaly.ingest.pipeline import BeforeCommit, Ingestor
from services.common.db import tenant_transaction
from services.common.errors import Conflict, NotFound, ValidationFailed

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_MS = int((datetime(2200, 1, 1, tzinfo=UTC) - EPOCH).total_seconds() * 1000)

SOURCES_SQL = """
SELECT id, metric_source, group_by
  FROM np_anomaly_detectors
 WHERE source_account_id = $1 AND enabled AND metric_source->>'type' = $2
 ORDER BY id
"""

R = TypeVar("R")


class Point(NamedTuple):
    """A sample as the ingestor takes it (``ingest.outcome.PointLike``); a tuple: a
    remote-write batch makes tens of thousands, and a frozen dataclass costs three
    times as much to build."""

    detector_id: str
    timestamp: datetime
    value: float
    labels: dict[str, str] | None


def json_value(value: Any) -> Any:
    """A jsonb column as asyncpg returns it (text unless a codec is set)."""
    return json.loads(value) if isinstance(value, str) else value


def at_ms(ms: int) -> datetime:
    """The instant ``ms`` milliseconds after the epoch."""
    return EPOCH + timedelta(milliseconds=ms)


def in_range(ms: int) -> bool:
    """Whether a millisecond timestamp is within 1970-2200 (the API's instants)."""
    return 0 <= ms < MAX_MS


async def load_sources(ingestor: Ingestor, account: str, source_type: str) -> list[asyncpg.Record]:
    """The account's enabled detectors whose ``metric_source.type`` is ``source_type``."""
    async with tenant_transaction(ingestor.pool, account) as conn:
        return list(await conn.fetch(SOURCES_SQL, account, source_type))


async def feed(
    ingestor: Ingestor,
    account: str,
    source_type: str,
    route: Callable[[list[asyncpg.Record]], tuple[list[Point], R]],
    *,
    before_commit: BeforeCommit | None = None,
) -> tuple[IngestOutcome | None, list[Point], R]:
    """Route with the account's detectors of ``source_type`` and ingest the points as
    one batch (``before_commit`` runs in its transaction, or in one of its own when no
    point was routed); returns the ingest outcome (None when no point was routed), the points
    fed (the outcome's ``errors`` index them) and what ``route`` said besides."""
    for attempt in range(2):
        rows = await load_sources(ingestor, account, source_type)
        points, extra = route(rows)
        if not points:
            if before_commit is not None:
                async with tenant_transaction(ingestor.pool, account) as conn:
                    await before_commit(conn)
            return None, points, extra
        try:
            outcome = await ingestor.ingest(
                account, points, batch=True, before_commit=before_commit
            )
        except (NotFound, Conflict, ValidationFailed):
            if attempt:
                raise
            continue
        return outcome, points, extra
    raise AssertionError("unreachable")
