"""The calls of an ingest transaction, checked and sorted out: unknown and disabled
detectors, each point's series and whether it is new, stored already (duplicates) or
late, and the points refused past ``max_series``."""

from __future__ import annotations

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
    for detector_id in sorted(set(call.detector_ids)):
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


# per series: the points to store (indices into the call, sorted by time), their epoch
# seconds and which of them are late
Selected = dict[SeriesId, tuple[np.ndarray, np.ndarray, np.ndarray]]


def group_points(call: Call) -> tuple[list[SeriesId], np.ndarray]:
    """The call's series (sorted) and each point's among them (-1: refused), found once
    per call (``find_duplicates`` and ``select_points`` both use them)."""
    if call.groups is not None:
        return call.groups
    series = call.series
    assert series is not None
    refused = {r.index for r in call.refused}
    codes: dict[Any, int] = {}
    first: list[int] = []
    labelled = call.is_labelled()
    keys: Any = zip(call.detector_ids, series, strict=True) if labelled else call.detector_ids
    for i, key in enumerate(keys):
        if i in refused:
            first.append(-1)
            continue
        code = codes.get(key)
        if code is None:
            code = codes[key] = len(codes)
        first.append(code)
    found = list(codes)
    sids: list[SeriesId] = found if labelled else [(d, EMPTY) for d in found]
    ranked = sorted(range(len(sids)), key=sids.__getitem__)
    rank = np.empty(len(sids) + 1, dtype=np.int64)
    rank[ranked] = np.arange(len(sids))
    rank[-1] = -1  # refused
    call.groups = [sids[k] for k in ranked], rank[np.asarray(first, dtype=np.int64)]
    return call.groups


def select_points(txn: IngestTransaction, call: Call) -> Selected:
    """Per series: the call's points to store (indices, epoch seconds), sorted by time
    (duplicates counted and left out; of points repeated in the call the first is kept),
    and which of them are late. Points refused (``max_series``) are left out. Moves the
    series' bookkeeping along. Vectorised over the whole call: per series, only its
    counters and slices."""
    sids, group = group_points(call)
    index = np.flatnonzero(group >= 0) if call.refused else np.arange(group.shape[0])
    group = group[index]
    epoch = call.epoch[index]
    order = np.lexsort((epoch, group))  # by series, then time; stable: first repeat first
    index, epoch, group = index[order], epoch[order], group[order]
    keep = np.ones(index.shape[0], dtype=bool)
    keep[1:] = (epoch[1:] != epoch[:-1]) | (group[1:] != group[:-1])
    lives = [txn.live[sid] for sid in sids]
    starts = np.searchsorted(group, np.arange(len(sids) + 1)).tolist()
    for k, live in enumerate(lives):
        if live.existing or live.taken is not None:  # stored, or chosen by a former call
            a, b = starts[k], starts[k + 1]
            seen = np.fromiter(live.existing or (), dtype=np.float64)
            if live.taken is not None:
                seen = np.concatenate((seen, live.taken))
            keep[a:b] &= ~np.isin(epoch[a:b], seen)
    submitted = np.bincount(group[keep], minlength=len(sids)).tolist()
    if not keep.all():
        index, epoch, group = index[keep], epoch[keep], group[keep]
    bound = np.array(
        [-np.inf if live.last_ts is None else live.last_ts.timestamp() for live in lives]
    )
    late = epoch <= bound[group]
    selected: Selected = {}
    at = 0
    for k, live in enumerate(lives):
        n = submitted[k]
        duplicates = starts[k + 1] - starts[k] - n
        live.duplicates += duplicates
        live.submitted += n
        call.outcome.duplicates += duplicates
        if not n:
            continue
        b = at + n
        epochs = epoch[at:b]
        live.taken = epochs if live.taken is None else np.concatenate((live.taken, epochs))
        live.scored = True
        selected[sids[k]] = (index[at:b], epochs, late[at:b])
        at = b
    call.expected += int(index.shape[0])
    call.late += int(late.sum())
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
            sids, group = group_points(call)
            bounds = np.array([latest.get(sid, -np.inf) for sid in sids] + [-np.inf])
            bound = bounds[group]  # -1 (refused): the last, never a candidate
            candidates = np.flatnonzero(call.epoch <= bound).tolist()
        for i in candidates:
            ids.append(call.points[i].detector_id)
            keys.append(series[i])
            stamps.append(call.points[i].timestamp)
    if ids:
        for r in await conn.fetch(sql.DUPLICATES_SQL, txn.account, ids, keys, stamps):
            live = txn.live.get((r["detector_id"], r["series_key"]))
            if live is not None:
                if live.existing is None:
                    live.existing = set()
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
