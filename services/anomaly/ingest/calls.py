"""The calls of an ingest transaction, checked and sorted out: unknown and disabled
detectors, each point's series and whether it is new, stored already (duplicates) or
late, and the points refused past ``max_series``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from services.anomaly.ingest import sql
from services.anomaly.ingest.live import Call, SeriesId
from services.anomaly.ingest.outcome import PointLike
from services.anomaly.ingest.transaction import IngestTransaction, max_series_error
from services.anomaly.series import EMPTY, labels_of
from services.common.errors import ApiError, Conflict, NotFound, ValidationFailed


def locate(points: Sequence[PointLike], detector_id: str) -> int:
    return next(i for i, p in enumerate(points) if p.detector_id == detector_id)


def check_detectors(
    txn: IngestTransaction, call: Call, *, batch: bool, unknown_is_404: bool
) -> bool:
    """Whether every detector of the call exists and is enabled (else ``call.error``)."""
    for detector_id in sorted({p.detector_id for p in call.points}):
        row = txn.detectors.get(detector_id)
        try:
            if row is None:
                unknown_detector(
                    call.points, detector_id, batch=batch, unknown_is_404=unknown_is_404
                )
            elif not row["enabled"]:
                i = locate(call.points, detector_id)
                raise Conflict(
                    f"detector {detector_id!r} is disabled"
                    + (f" (points.{i}.detector_id)" if batch else ""),
                    details={"detector_id": detector_id, **({"index": i} if batch else {})},
                )
        except ApiError as exc:
            call.error = exc
            return False
    return True


Selected = dict[SeriesId, tuple[list[int], np.ndarray, np.ndarray]]


def select_points(txn: IngestTransaction, call: Call) -> Selected:
    """Per series: the call's points to store (indices, epoch seconds), sorted by time
    (duplicates counted and left out; of points repeated in the call the first is kept),
    and which of them are late. Points refused (``max_series``) are left out. Moves the
    series' bookkeeping along."""
    points = call.points
    series = call.series
    assert series is not None
    epoch_all = call.epoch
    by_series: dict[SeriesId, list[int]]
    if len(points) == 1 and not call.refused:
        by_series = {(points[0].detector_id, series[0]): [0]}
    elif not call.labelled and not call.refused:  # every point in the unlabelled series
        by_detector: dict[str, list[int]] = defaultdict(list)
        for i, detector_id in enumerate(call.detector_ids):
            by_detector[detector_id].append(i)
        by_series = {(d, EMPTY): index for d, index in by_detector.items()}
    else:
        refused = {r.index for r in call.refused}
        by_series = defaultdict(list)
        for i, p in enumerate(points):
            if i not in refused:
                by_series[(p.detector_id, series[i])].append(i)
    selected: Selected = {}
    for sid in sorted(by_series):
        live = txn.live[sid]
        index = np.asarray(by_series[sid], dtype=np.int64)
        epoch = epoch_all[index]
        if index.size > 1:
            order = np.argsort(epoch, kind="stable")
            index, epoch = index[order], epoch[order]
            keep = np.ones(index.size, dtype=bool)
            keep[1:] = epoch[1:] != epoch[:-1]
        else:
            keep = np.ones(1, dtype=bool)
        if live.existing:
            keep &= ~np.isin(epoch, np.fromiter(live.existing, dtype=np.float64))
        duplicates = int(index.size - keep.sum())
        if duplicates:
            index, epoch = index[keep], epoch[keep]
        live.duplicates += duplicates
        live.submitted += int(index.size)
        call.outcome.duplicates += duplicates
        if not index.size:
            continue
        live.existing.update(epoch.tolist())
        if live.last_ts is None:
            late = np.zeros(index.size, dtype=bool)
        else:
            late = epoch <= live.last_ts.timestamp()
        live.scored = True
        call.expected += int(index.size)
        call.late += int(late.sum())
        selected[sid] = (index.tolist(), epoch, late)
    return selected


async def find_duplicates(
    conn: asyncpg.Connection, txn: IngestTransaction, calls: Sequence[Call], check_all: bool
) -> None:
    """Record in each detector which submitted points are stored already.

    Points newer than their detector's latest learned point cannot repeat a point stored
    through this pipeline (the lock orders them), so only the others are looked up; a
    collision with a row inserted otherwise is caught by ON CONFLICT and the transaction
    redone with every point looked up.
    """
    ids: list[str] = []
    keys: list[str] = []
    stamps: list[datetime] = []
    latest = {
        sid: live.last_ts.timestamp() for sid, live in txn.live.items() if live.last_ts is not None
    }
    for call in calls:
        series = call.series
        assert series is not None
        if check_all:
            candidates: Any = range(len(call.points))
        else:
            if not latest:
                continue
            if call.labelled:
                bound = np.array(
                    [
                        latest.get(sid, -np.inf)
                        for sid in zip(call.detector_ids, series, strict=True)
                    ]
                )
            else:
                unlabelled = {d: ts for (d, key), ts in latest.items() if key == EMPTY}
                bound = np.array([unlabelled.get(d, -np.inf) for d in call.detector_ids])
            candidates = np.flatnonzero(call.epoch <= bound).tolist()
        for i in candidates:
            ids.append(call.points[i].detector_id)
            keys.append(series[i])
            stamps.append(call.points[i].timestamp)
    if ids:
        for r in await conn.fetch(sql.DUPLICATES_SQL, txn.account, ids, keys, stamps):
            live = txn.live.get((r["detector_id"], r["series_key"]))
            if live is not None:
                live.existing.add(r["ts"].timestamp())


def unknown_detector(
    points: Sequence[PointLike], detector_id: str, *, batch: bool, unknown_is_404: bool
) -> None:
    if not batch:
        raise NotFound(f"no detector {detector_id!r}", details={"detector_id": detector_id})
    i = locate(points, detector_id)
    if unknown_is_404:
        raise NotFound(
            f"points.{i}.detector_id: no detector {detector_id!r}",
            details={"detector_id": detector_id, "index": i},
        )
    raise ValidationFailed(
        f"points.{i}.detector_id: no detector {detector_id!r}",
        details=[
            {
                "loc": ["body", "points", str(i), "detector_id"],
                "message": f"no detector {detector_id!r}",
                "type": "unknown_detector",
            }
        ],
    )


def refused_errors(txn: IngestTransaction, call: Call) -> list[dict[str, Any]]:
    """The answer's ``errors``: one per point of a batch refused past ``max_series``."""
    return [
        {
            "index": r.index,
            "detector_id": r.detector_id,
            "labels": labels_of(r.series_key),
            "code": "max_series",
            "message": max_series_error(
                r.detector_id, r.series_key, txn.detectors[r.detector_id]["max_series"], r.index
            ).message,
        }
        for r in call.refused
    ]
