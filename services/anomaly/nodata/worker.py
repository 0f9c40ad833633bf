"""No-data alerts: the pass (``run_once(now)``) and the lifetime hook that repeats it.

A pass reads the open silences and then the series due for one (``store.py``), one
batch per transaction, lets ``core.decide`` say which silences end and which start,
and writes its answer in the same transaction (``store.start`` / ``store.end``): the
``no_data`` anomaly, the series' open silence, the page (``open``) or its resolve in the
page outbox, which the paging loop delivers to nself-oncall as any other page. The
hook runs a pass every ``interval`` seconds (or when ``app.state.nodata_wakeup`` is set)
with the app's clock (``app.state.clock``), and wakes the paging loop when a pass queued
pages or resolves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import FastAPI
from prometheus_client import Counter

from services.anomaly.nodata import store
from services.anomaly.nodata.core import End, SeriesWatch, Start, decide
from services.anomaly.paging.keys import from_epoch, iso
from services.anomaly.series import EMPTY, describe, labels_of
from services.anomaly.thresholds import DEFAULT_PAGE_MAX_AGE_SECONDS
from services.common.background import repeat, running, worker_pool
from services.common.settings import Settings

log = logging.getLogger("nsentry.anomaly.nodata")

SEVERITY = "critical"
# one batch of series rows, read and locked, after a keyset position
Reader = Callable[[asyncpg.Connection, store.Cursor], Awaitable[list[asyncpg.Record]]]
SILENCES = Counter(
    "nsentry_no_data_silences_total",
    "nself-anomaly no-data silences of series, by event (started, ended)",
    ["event"],
)


def no_data_key(account: str, detector_id: str, series_key: str, at: datetime) -> str:
    """``anomaly:<account>:<detector>:<series>:no_data:<recorded at>``: a silence of a
    series pages once (the empty series leaves its key out, as episodes' keys do)."""
    series = "" if series_key == EMPTY else f"{series_key}:"
    return f"anomaly:{account}:{detector_id}:{series}no_data:{iso(at)}"


def _named(name: str, series_key: str) -> str:
    return name if series_key == EMPTY else f"{name} {describe(series_key)}"


def _epoch(ts: datetime | None) -> float | None:
    return None if ts is None else ts.timestamp()


def watch(row: asyncpg.Record) -> SeriesWatch:
    """A series row as ``core.decide`` takes it."""
    thresholds: dict[str, Any] = row["thresholds"] or {}
    max_age = thresholds.get("page_max_age_seconds", DEFAULT_PAGE_MAX_AGE_SECONDS)
    return SeriesWatch(
        key=(row["source_account_id"], row["detector_id"], row["series_key"]),
        last_ts=_epoch(row["last_ts"]),
        silent_since=_epoch(row["no_data_since"]),
        no_data_seconds=row["no_data_seconds"],
        enabled=row["enabled"],
        interval=row["interval"],
        pages=row["escalation_policy_id"] is not None,
        page_max_age_seconds=None if max_age is None else float(max_age),
        auto_resolve=thresholds.get("auto_resolve", True) is not False,
    )


def start_row(row: asyncpg.Record, start: Start) -> dict[str, Any]:
    """What ``store.start`` writes for one silence."""
    account, detector_id, series_key = (
        row["source_account_id"],
        row["detector_id"],
        row["series_key"],
    )
    at, since = from_epoch(start.at), from_epoch(start.since)
    key = no_data_key(account, detector_id, series_key, at)
    named = _named(row["name"], series_key)
    context = {
        "kind": "no_data",
        "explanation": start.explanation,
        "episode_start": iso(at),
        "last_point_at": iso(since),
        "no_data_seconds": row["no_data_seconds"],
        "interval": row["interval"],
        "algorithm": row["algorithm"],
        "params": row["params"],
        "thresholds": row["thresholds"],
        "paged": start.page,
    }
    return {
        "account": account,
        "detector_id": detector_id,
        "series_key": series_key,
        "at": at,
        "since": since,
        "value": row["last_value"] if row["last_value"] is not None else 0.0,
        "context": context,
        "page": start.page,
        "policy_id": row["escalation_policy_id"],
        "dedup_key": key,
        "summary": f"No data on {named}: {start.explanation}",
        "details": _details(
            row,
            timestamp=iso(at),
            last_point_at=iso(since),
            no_data_seconds=row["no_data_seconds"],
            explanation=start.explanation,
            episode_start=iso(at),
        ),
    }


def _details(row: asyncpg.Record, **more: Any) -> dict[str, Any]:
    """A no-data alert's details: the series it is about, then ``more``."""
    return {
        "kind": "no_data",
        "detector_id": row["detector_id"],
        "detector_name": row["name"],
        "labels": labels_of(row["series_key"]),
        "account": row["source_account_id"],
        **more,
    }


def end_row(row: asyncpg.Record, end: End, now: datetime) -> dict[str, Any]:
    """What ``store.end`` writes for one silence."""
    account, detector_id, series_key = (
        row["source_account_id"],
        row["detector_id"],
        row["series_key"],
    )
    at = row["no_data_at"]
    named = _named(row["name"], series_key)
    ended_at = (row["back_at"] or row["last_ts"]) if end.by == "data" else now
    if end.by == "data":
        summary = f"Recovered: {named} reporting again at {iso(ended_at)}"
    else:
        summary = f"Recovered: {named} no longer watched for missing data"
    return {
        "account": account,
        "detector_id": detector_id,
        "series_key": series_key,
        "at": at,
        "ended_at": iso(ended_at),
        "ended_by": end.by,
        "resolve": end.resolve,
        "dedup_key": no_data_key(account, detector_id, series_key, at),
        "summary": summary,
        "details": _details(row, episode_start=iso(at), ended_at=iso(ended_at), ended_by=end.by),
    }


@dataclass
class NoDataReport:
    started: int = 0  # no_data anomalies recorded
    pages: int = 0  # of which queued to page
    ended: int = 0  # silences ended
    resolves: int = 0  # resolves queued


class NoDataCheck:
    """One ``run_once(now)`` is one pass over every watching detector's series."""

    def __init__(self, pool: asyncpg.Pool, *, batch: int = 500) -> None:
        self.pool = pool
        self.batch = batch

    async def run_once(self, now: datetime) -> NoDataReport:
        """Open silences first (a series back since then does not start a new one), then
        the series due; one batch per transaction, in key order."""
        report = NoDataReport()
        readers: tuple[Reader, ...] = (
            lambda conn, after: store.open_silences(conn, after, self.batch),
            lambda conn, after: store.due(conn, now, after, self.batch),
        )
        for read in readers:
            cursor = store.START
            while True:
                async with self.pool.acquire() as conn, conn.transaction():
                    rows = await read(conn, cursor)
                    if rows:
                        await self._apply(conn, rows, now, report)
                if len(rows) < self.batch:
                    break
                cursor = _key(rows[-1])
        return report

    async def _apply(
        self,
        conn: asyncpg.Connection,
        rows: list[asyncpg.Record],
        now: datetime,
        report: NoDataReport,
    ) -> None:
        """Let the core decide on a locked batch and write its answer."""
        by_key: dict[Hashable, asyncpg.Record] = {_key(r): r for r in rows}
        decision = decide((watch(r) for r in rows), now.timestamp())
        if decision.ends:
            ended = await store.end(
                conn, [end_row(by_key[e.key], e, now) for e in decision.ends], now=now
            )
            report.ended += int(ended["ended"])
            report.resolves += int(ended["resolves"])
            SILENCES.labels("ended").inc(int(ended["ended"]))
        if decision.starts:
            started = await store.start(
                conn,
                [start_row(by_key[s.key], s) for s in decision.starts],
                severity=SEVERITY,
                now=now,
            )
            report.started += int(started["started"])
            report.pages += int(started["pages"])
            SILENCES.labels("started").inc(int(started["started"]))


def _key(row: asyncpg.Record) -> store.Cursor:
    return (row["source_account_id"], row["detector_id"], row["series_key"])


def nodata_hook(*, interval: float = 15.0) -> Callable[[FastAPI], Any]:
    """A lifetime hook running the no-data pass with the app's clock
    (``app.state.clock``) every ``interval`` s, or when ``app.state.nodata_wakeup`` is
    set; a pass that queued pages or resolves wakes the paging loop."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        app.state.nodata_wakeup = asyncio.Event()
        if not settings.database_url:
            yield
            return
        clock: Callable[[], datetime] = app.state.clock
        async with worker_pool(settings, max_size=2) as pool:
            check = NoDataCheck(pool)
            app.state.nodata_check = check

            async def one_pass() -> float:
                report = await check.run_once(clock())
                if report.pages or report.resolves:
                    wakeup = getattr(app.state, "page_wakeup", None)
                    if wakeup is not None:
                        wakeup.set()
                return interval

            loop = repeat(
                app,
                one_pass,
                name="no-data",
                interval=interval,
                log=log,
                wakeup=app.state.nodata_wakeup,
            )
            async with running(loop):
                yield

    return hook
