"""The series migration on a database with learned state: what the detectors learned
before it scores the next points exactly as it would have without it.

The database is migrated to the version before the series migration and filled as
the pipeline of that version left it: each detector row holds a checkpoint of its
model (`state`), the journal of the batches learned since, its threshold state with
an open paged episode (and that episode's `open` page in the outbox), counters, and
its points. The model is built with the same pure cores the pipeline uses, so the
scores the next points get without the migration are known (the model kept going in
memory). Then the migration runs and a service started on it (a cold cache:
everything is rebuilt from the moved checkpoint and journal) ingests those points.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from services.anomaly.app import create_app
from services.anomaly.detectors_api.service import check_config
from services.anomaly.ingest import statecodec
from services.anomaly.ingest.scoring import build_detector, score_points
from services.anomaly.paging.keys import dedup_key, from_epoch
from services.anomaly.series import EMPTY
from services.anomaly.thresholds import parse_thresholds
from services.common import db, migrations
from services.common.embedded import EmbeddedPostgres
from services.common.settings import DEFAULT_MIGRATIONS_DIR
from tests.clock import FakeClock
from tests.conftest import auth_headers, create_database, make_settings, serve_app

SERIES_MIGRATION = "1796309123707_anomaly_series"
ACCOUNT = "acct-m"
T0 = datetime(2026, 10, 1, tzinfo=UTC)
STEP = 300.0
CHUNKS = (600, 40, 25)  # the checkpoint after the first batch, then two journaled ones
NEXT = 60


def _epoch(first: int, n: int) -> np.ndarray:
    return T0.timestamp() + STEP * np.arange(first, first + n, dtype=np.float64)


def _values(seed: int, first: int, n: int) -> np.ndarray:
    i = np.arange(first, first + n)
    daily = 10.0 * np.sin(2 * np.pi * i * STEP / 86400.0)
    return 100.0 + daily + np.random.default_rng(seed + first).normal(0.0, 1.0, n)


class OldPipeline:
    """A detector as the pipeline before series left it in its row, and the model kept
    going in memory."""

    def __init__(self, detector_id: str, algorithm: str, seed: int) -> None:
        self.id, self.seed = detector_id, seed
        self.params, self.thresholds, self.fresh = check_config(
            algorithm, {}, {"cooldown_seconds": 3600, "score": 0.99}
        )
        self.algorithm = algorithm
        self.policy = parse_thresholds(self.thresholds)
        self.detector = build_detector(algorithm, self.params)
        self.policy_state: dict[str, Any] = {}
        self.state: dict[str, Any] | None = None
        self.journal = b""
        self.points: list[tuple[datetime, float, float, bool]] = []
        first = 0
        for k, n in enumerate(CHUNKS):
            epoch, values = _epoch(first, n), _values(seed, first, n)
            if k == len(CHUNKS) - 1:
                values[-3:] += 80.0  # an incident still going on: an open episode
            scored = score_points(
                self.detector,
                self.policy,
                self.policy_state,
                epoch,
                values,
                np.zeros(n, dtype=bool),
                now=float(epoch[-1]),
            )
            self.policy_state = scored.policy_state
            self.learning = scored.learning
            if k == 0:
                self.state = {"model": statecodec.pack(self.detector.get_state())}
            else:
                self.journal += statecodec.journal_chunk(epoch, values)
            self.points += [
                (from_epoch(float(t)), float(v), float(s), bool(a))
                for t, v, s, a in zip(epoch, values, scored.score, scored.is_anomaly, strict=True)
            ]
            first += n
        self.next_first = first
        assert self.policy_state.get("episode_start") is not None, "no open episode"

    def next_scores(self, now: float) -> list[float]:
        epoch, values = _epoch(self.next_first, NEXT), _values(self.seed, self.next_first, NEXT)
        scored = score_points(
            self.detector,
            self.policy,
            self.policy_state,
            epoch,
            values,
            np.zeros(NEXT, dtype=bool),
            now=now,
        )
        return [float(s) for s in scored.score]

    def next_points(self) -> list[dict[str, Any]]:
        epoch, values = _epoch(self.next_first, NEXT), _values(self.seed, self.next_first, NEXT)
        return [
            {
                "detector_id": self.id,
                "value": float(v),
                "timestamp": from_epoch(float(t)).isoformat(),
            }
            for t, v in zip(epoch, values, strict=True)
        ]

    @property
    def episode_key(self) -> str:
        return dedup_key(ACCOUNT, self.id, EMPTY, from_epoch(self.policy_state["episode_start"]))

    async def store(self, conn: asyncpg.Connection) -> None:
        """The detector row, its points and its episode's page, in the old schema."""
        last_ts, last_value, last_score, _ = self.points[-1]
        anomalies = [p for p in self.points if p[3]]
        await conn.execute(
            """
            INSERT INTO np_anomaly_detectors
                (source_account_id, id, name, algorithm, params, thresholds,
                 escalation_policy_id, state, journal, policy_state, n_seen, warmup, learning,
                 points_count, anomalies_count, last_ts, last_value, last_score,
                 last_anomaly_at, episode_key, episode_ends_at)
            VALUES ($1, $2, $2, $3, $4, $5, 'ops', $6, $7, $8, $9, $10, $11, $12, $13, $14,
                    $15, $16, $17, $18, $19)
            """,
            ACCOUNT,
            self.id,
            self.algorithm,
            self.params,
            self.thresholds,
            self.state,
            self.journal,
            self.policy_state,
            self.detector.n_seen,
            self.detector.warmup,
            self.learning,
            len(self.points),
            len(anomalies),
            last_ts,
            last_value,
            last_score,
            anomalies[-1][0],
            self.episode_key,
            last_ts + timedelta(hours=1),
        )
        await conn.executemany(
            "INSERT INTO np_anomaly_data_points (source_account_id, detector_id, ts, value, "
            "score, is_anomaly, status) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [(ACCOUNT, self.id, ts, v, s, a, "open" if a else None) for ts, v, s, a in self.points],
        )
        await conn.execute(
            "INSERT INTO np_anomaly_page_outbox (source_account_id, kind, detector_id, "
            "policy_id, dedup_key, episode_start, severity, summary, status, alert_id) "
            "VALUES ($1, 'open', $2, 'ops', $3, $4, 'critical', 'paged', 'sent', '7')",
            ACCOUNT,
            self.id,
            self.episode_key,
            from_epoch(self.policy_state["episode_start"]),
        )


def _before_series(tmp_path: Path, *, through: bool = False) -> Path:
    """The migrations before the series migration (and it too, ``through``): later
    ones are applied after the checks, so the test holds as migrations are added."""
    folder = tmp_path / ("through" if through else "before")
    folder.mkdir()
    for migration in DEFAULT_MIGRATIONS_DIR.iterdir():
        if migration.is_dir() and (
            migration.name < SERIES_MIGRATION or (through and migration.name == SERIES_MIGRATION)
        ):
            shutil.copytree(migration, folder / migration.name)
    return folder


async def test_learned_state_moves_to_the_empty_series_and_scores_the_same(
    pg_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    dsn = await create_database(pg_server, "t_migration_series", migrate=False)
    olds = [OldPipeline("auto-m", "auto", seed=1), OldPipeline("mad-m", "mad", seed=2)]
    conn = await db.connect(dsn)
    try:
        await migrations.migrate_up(conn, _before_series(tmp_path))
        async with conn.transaction():
            await db.set_tenant(conn, ACCOUNT)
            for old in olds:
                await old.store(conn)
        applied = await migrations.migrate_up(conn, _before_series(tmp_path, through=True))
        assert [m.version for m in applied] == [int(SERIES_MIGRATION.split("_")[0])]
        await migrations.migrate_up(conn, DEFAULT_MIGRATIONS_DIR)
        async with conn.transaction():
            await db.set_tenant(conn, ACCOUNT)
            moved = {
                r["detector_id"]: r
                for r in await conn.fetch("SELECT * FROM np_anomaly_series ORDER BY detector_id")
            }
            keys = await conn.fetch("SELECT DISTINCT series_key FROM np_anomaly_data_points")
    finally:
        await conn.close()
    assert [r["series_key"] for r in keys] == [EMPTY]
    for old in olds:
        row = moved[old.id]
        assert (row["series_key"], row["labels"]) == (EMPTY, {})
        assert row["state"] == old.state and bytes(row["journal"]) == old.journal
        assert row["policy_state"] == old.policy_state and row["n_seen"] == old.detector.n_seen
        assert row["episode_key"] == old.episode_key

    now = olds[0].points[-1][0] + timedelta(minutes=5)
    settings = make_settings(dsn)
    async with serve_app(create_app(settings, background=False, clock=FakeClock(now))) as c:
        h = auth_headers(ACCOUNT)
        for old in olds:
            got = (await c.get(f"/api/v1/detectors/{old.id}", headers=h)).json()
            assert got["n_seen"] == old.detector.n_seen and got["series_count"] == 1
            assert got["counts"]["points"] == len(old.points)
            want = old.next_scores(now.timestamp())
            answer = await c.post("/api/v1/ingest", json={"points": old.next_points()}, headers=h)
            assert answer.status_code == 200, answer.text
            assert answer.json()["accepted"] == NEXT
            conn = await db.connect(dsn)
            try:
                async with conn.transaction():
                    await db.set_tenant(conn, ACCOUNT)
                    scores = await conn.fetch(
                        "SELECT score FROM np_anomaly_data_points WHERE detector_id = $1 "
                        "ORDER BY ts DESC LIMIT $2",
                        old.id,
                        NEXT,
                    )
                    outbox = await conn.fetch(
                        "SELECT kind, dedup_key FROM np_anomaly_page_outbox "
                        "WHERE detector_id = $1 ORDER BY id",
                        old.id,
                    )
            finally:
                await conn.close()
            # the same model: the same scores, to the bit
            assert [r["score"] for r in reversed(scores)] == want, old.id
            # the episode opened before the migration ends now, and its alert is resolved
            rows = [(r["kind"], r["dedup_key"]) for r in outbox]
            assert rows[0] == ("open", old.episode_key)
            assert rows.count(("resolve", old.episode_key)) == 1


async def test_down_puts_the_state_back_in_the_detector_row(
    pg_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    dsn = await create_database(pg_server, "t_migration_series_down", migrate=False)
    old = OldPipeline("ewma-m", "ewma", seed=3)
    conn = await db.connect(dsn)
    try:
        await migrations.migrate_up(conn, _before_series(tmp_path))
        async with conn.transaction():
            await db.set_tenant(conn, ACCOUNT)
            await old.store(conn)
        through = _before_series(tmp_path, through=True)
        await migrations.migrate_up(conn, through)
        async with conn.transaction():
            await db.set_tenant(conn, ACCOUNT)
            await conn.execute(  # a labelled series' point: dropped by the way down
                "INSERT INTO np_anomaly_data_points (source_account_id, detector_id, "
                'series_key, ts, value) VALUES ($1, $2, \'{"host":"a"}\', now(), 1)',
                ACCOUNT,
                old.id,
            )
        rolled = await migrations.migrate_down(conn, through, 1)
        assert [m.version for m in rolled] == [int(SERIES_MIGRATION.split("_")[0])]
        async with conn.transaction():
            await db.set_tenant(conn, ACCOUNT)
            row = await conn.fetchrow(
                "SELECT state, journal, policy_state, n_seen, episode_key, points_count "
                "FROM np_anomaly_detectors WHERE id = $1",
                old.id,
            )
            points = await conn.fetchval("SELECT count(*) FROM np_anomaly_data_points")
    finally:
        await conn.close()
    assert row is not None
    assert row["state"] == old.state and bytes(row["journal"]) == old.journal
    assert row["policy_state"] == old.policy_state and row["n_seen"] == old.detector.n_seen
    assert row["episode_key"] == old.episode_key and row["points_count"] == len(old.points)
    assert points == len(old.points)
