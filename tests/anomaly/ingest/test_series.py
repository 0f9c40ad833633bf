"""Multi-series detectors at ingest: labels, group_by, one model per series, max_series,
and the validation of labels (real Postgres, over HTTP)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from services.common.metrics import SERIES_REFUSED
from services.common.settings import Settings
from tests.anomaly.conftest import create_detector, ingest, noise, series, stamp
from tests.conftest import auth_headers

INSTANCES = ("a", "b", "c")


def labelled(detector_id: str, values: Any, labels: dict[str, str], **kw: Any) -> list[dict]:
    return [{**p, "labels": labels} for p in series(detector_id, values, **kw)]


async def stored(settings: Settings, detector_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetch(
            "SELECT series_key, ts, score, is_anomaly FROM np_anomaly_data_points "
            "WHERE detector_id = $1 ORDER BY series_key, ts",
            detector_id,
        )
    finally:
        await conn.close()


async def series_list(client: httpx.AsyncClient, detector_id: str, **params: Any) -> Any:
    got = await client.get(
        f"/api/v1/detectors/{detector_id}/series", params=params, headers=auth_headers()
    )
    assert got.status_code == 200, got.text
    return got.json()


async def test_three_series_each_learn_their_own_model(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """group_by ["instance"]: three series, the `pod` label dropped; each series scores
    exactly as a plain detector fed only its own points (its own model)."""
    await create_detector(client, "multi", algorithm="mad", group_by=["instance"])
    levels = {"a": 10.0, "b": 100.0, "c": 1000.0}
    points = []
    for k, instance in enumerate(INSTANCES):
        values = noise(120, seed=k, level=levels[instance], sd=levels[instance] / 50)
        values[100] = levels[instance] * 3  # the same spike, relative to each level
        await create_detector(client, f"solo-{instance}", algorithm="mad")
        points += labelled("multi", values, {"instance": instance, "pod": f"p-{k}"})
        assert (await ingest(client, series(f"solo-{instance}", values))).status_code == 200
    got = await ingest(client, points)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["accepted"] == 360 and body["refused"] == 0
    by_series = {a["labels"]["instance"] for a in body["anomalies"]}
    assert by_series == set(INSTANCES)
    assert all(set(a["labels"]) == {"instance"} for a in body["anomalies"])  # pod dropped

    rows = await stored(settings, "multi")
    for instance in INSTANCES:
        mine = [
            (r["ts"], r["score"]) for r in rows if r["series_key"] == f'{{"instance":"{instance}"}}'
        ]
        solo = [(r["ts"], r["score"]) for r in await stored(settings, f"solo-{instance}")]
        assert mine == solo  # bit for bit: one model per series, fed its own points only

    listed = await series_list(client, "multi")
    assert [s["labels"] for s in listed["data"]] == [{"instance": i} for i in INSTANCES]
    for s in listed["data"]:
        assert s["counts"]["points"] == 120 and s["counts"]["anomalies"] >= 1
        assert s["status"] == "active" and s["n_seen"] == 120
        assert s["last_point"]["timestamp"] == stamp(119)
    detector = (await client.get("/api/v1/detectors/multi", headers=auth_headers())).json()
    assert detector["series_count"] == 3 and detector["group_by"] == ["instance"]
    assert detector["n_seen"] == 360 and detector["counts"]["points"] == 360


async def test_without_labels_a_detector_is_one_series_as_before(
    client: httpx.AsyncClient,
) -> None:
    await create_detector(client, "plain", algorithm="ewma")
    body = (await ingest(client, series("plain", noise(30)))).json()
    assert body["accepted"] == 30 and body["refused"] == 0 and body["errors"] == []
    listed = await series_list(client, "plain")
    assert [(s["labels"], s["counts"]["points"]) for s in listed["data"]] == [({}, 30)]
    detector = (await client.get("/api/v1/detectors/plain", headers=auth_headers())).json()
    assert detector["group_by"] is None and detector["max_series"] == 1000
    assert detector["series_count"] == 1 and detector["n_seen"] == 30


async def test_group_by_null_makes_a_series_of_every_label_set(client: httpx.AsyncClient) -> None:
    await create_detector(client, "every", algorithm="ewma")
    points = labelled("every", [1.0, 2.0], {"instance": "a", "job": "x"}) + labelled(
        "every", [1.0, 2.0], {"instance": "a", "job": "y"}
    )
    assert (await ingest(client, points)).json()["accepted"] == 4  # same ts, two series
    listed = await series_list(client, "every")
    assert [s["labels"] for s in listed["data"]] == [
        {"instance": "a", "job": "x"},
        {"instance": "a", "job": "y"},
    ]
    # a duplicate is per series: the same timestamp again in one of them
    again = (await ingest(client, labelled("every", [5.0], {"job": "x", "instance": "a"}))).json()
    assert again["accepted"] == 0 and again["duplicates"] == 1


async def test_past_max_series_new_series_are_refused_and_nothing_else_is(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await create_detector(client, "capped", algorithm="ewma", max_series=2, group_by=["host"])
    await create_detector(client, "bystander", algorithm="ewma")
    before = SERIES_REFUSED._value.get()
    points = (
        labelled("capped", [1.0, 2.0], {"host": "h1"})
        + labelled("capped", [1.0, 2.0, 3.0], {"host": "h3"}, first=10)
        + series("bystander", [5.0, 6.0])
        + labelled("capped", [1.0, 2.0], {"host": "h2"})
    )
    got = await ingest(client, points)
    assert got.status_code == 200, got.text
    body = got.json()
    # series are created in the order their points come: h1, h3; then h2 is one too many
    assert body["accepted"] == 2 + 3 + 2 and body["refused"] == 2
    assert [e["index"] for e in body["errors"]] == [7, 8]
    assert {e["code"] for e in body["errors"]} == {"max_series"}
    assert body["errors"][0]["labels"] == {"host": "h2"}
    assert body["errors"][0]["detector_id"] == "capped"
    assert "max_series (2)" in body["errors"][0]["message"]
    assert SERIES_REFUSED._value.get() == before + 2
    rows = await stored(settings, "capped")
    assert sorted({r["series_key"] for r in rows}) == ['{"host":"h1"}', '{"host":"h3"}']
    assert len(await stored(settings, "bystander")) == 2

    # a single point of a new series: its request is refused with the envelope (409)
    single = await client.post(
        "/api/v1/ingest",
        json={
            "detector_id": "capped",
            "value": 1.0,
            "timestamp": stamp(50),
            "labels": {"host": "h9"},
        },
        headers=auth_headers(),
    )
    assert single.status_code == 409
    assert single.json()["error"]["code"] == "max_series"
    assert single.json()["error"]["details"]["labels"] == {"host": "h9"}
    # the series it has keep taking points
    more = await ingest(client, labelled("capped", [4.0], {"host": "h1"}, first=5))
    assert more.json()["accepted"] == 1 and more.json()["refused"] == 0
    detector = (await client.get("/api/v1/detectors/capped", headers=auth_headers())).json()
    assert detector["series_count"] == 2
    assert SERIES_REFUSED._value.get() == before + 3
    metrics = (await client.get("/metrics")).text  # what Prometheus scrapes shows it
    assert f"nsentry_series_refused_total {before + 3:.1f}" in metrics.splitlines()


async def test_raising_max_series_lets_new_series_in(client: httpx.AsyncClient) -> None:
    await create_detector(client, "grow", algorithm="ewma", max_series=1)
    await ingest(client, labelled("grow", [1.0], {"host": "a"}))
    assert (await ingest(client, labelled("grow", [1.0], {"host": "b"}))).json()["refused"] == 1
    patched = await client.patch(
        "/api/v1/detectors/grow", json={"max_series": 5}, headers=auth_headers()
    )
    assert patched.status_code == 200 and patched.json()["max_series"] == 5
    assert (await ingest(client, labelled("grow", [1.0], {"host": "b"}))).json()["accepted"] == 1


async def test_a_new_group_by_drops_the_series_it_cannot_make(client: httpx.AsyncClient) -> None:
    await create_detector(client, "regroup", algorithm="ewma")
    await ingest(client, series("regroup", noise(10)))  # the unlabelled series
    await ingest(client, labelled("regroup", noise(10), {"instance": "a", "pod": "1"}))
    await ingest(client, labelled("regroup", noise(10), {"instance": "b"}))
    patched = await client.patch(
        "/api/v1/detectors/regroup", json={"group_by": ["instance"]}, headers=auth_headers()
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["series_count"] == 2
    listed = await series_list(client, "regroup")
    assert [(s["labels"], s["n_seen"]) for s in listed["data"]] == [
        ({}, 10),
        ({"instance": "b"}, 10),
    ]
    # a point labelled with both now goes to the instance's series
    await ingest(client, labelled("regroup", [1.0], {"instance": "b", "pod": "9"}, first=10))
    listed = await series_list(client, "regroup")
    assert [s["n_seen"] for s in listed["data"]] == [10, 11]


async def test_labels_are_validated_and_a_bad_point_writes_nothing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await create_detector(client, "strict-labels", algorithm="ewma")
    good = labelled("strict-labels", [1.0], {"instance": "a"})[0]
    cases = {
        "too many": {f"l{i}": "x" for i in range(1000)},
        "bad name": {"1instance": "a"},
        "dash in name": {"my-label": "a"},
        "number value": {"instance": 1},
        "long value": {"instance": "x" * 2000},
        "not an object": ["instance", "a"],
    }
    for case, labels in cases.items():
        bad = {**good, "timestamp": stamp(1), "labels": labels}
        got = await ingest(client, [good, bad])
        assert got.status_code == 422, (case, got.text)
        error = got.json()["error"]
        assert error["code"] == "validation_error", case
        assert error["message"].startswith("points.1.labels"), (case, error["message"])
    assert await stored(settings, "strict-labels") == []  # nothing written
    ok = await ingest(client, [good])
    assert ok.status_code == 200 and ok.json()["accepted"] == 1


async def test_concurrent_batches_creating_the_same_series_store_everything_once(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Eight batches at once, each starting the same two new series: the transactions that
    lose the race to create a series are redone, and every point is stored once."""
    await create_detector(client, "race", algorithm="ewma", group_by=["host"])
    batches = [
        labelled("race", [1.0] * 5, {"host": "x"}, first=10 * k)
        + labelled("race", [2.0] * 5, {"host": "y"}, first=10 * k)
        for k in range(8)
    ]
    answers = await asyncio.gather(*(ingest(client, b) for b in batches))
    assert [a.status_code for a in answers] == [200] * 8
    assert sum(a.json()["accepted"] for a in answers) == 80
    rows = await stored(settings, "race")
    assert len(rows) == 80 and len({(r["series_key"], r["ts"]) for r in rows}) == 80
    listed = await series_list(client, "race")
    # each point learned or, when a later batch committed first, stored late
    assert [
        (s["labels"], s["counts"]["points"], s["n_seen"] + s["counts"]["late"])
        for s in listed["data"]
    ] == [({"host": "x"}, 40, 40), ({"host": "y"}, 40, 40)]
    detector = (await client.get("/api/v1/detectors/race", headers=auth_headers())).json()
    assert detector["series_count"] == 2


async def test_concurrent_new_series_never_pass_max_series(client: httpx.AsyncClient) -> None:
    await create_detector(client, "race-cap", algorithm="ewma", max_series=3)
    batches = [labelled("race-cap", [1.0, 2.0], {"host": f"h{k}"}) for k in range(8)]
    answers = await asyncio.gather(*(ingest(client, b) for b in batches))
    bodies = [a.json() for a in answers]
    assert sorted(b["accepted"] for b in bodies) == [0] * 5 + [2] * 3
    assert sorted(b["refused"] for b in bodies) == [0] * 3 + [2] * 5
    detector = (await client.get("/api/v1/detectors/race-cap", headers=auth_headers())).json()
    assert detector["series_count"] == 3
    assert len((await series_list(client, "race-cap"))["data"]) == 3
