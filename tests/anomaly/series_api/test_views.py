"""The series of a detector over HTTP: the list (keyset pages, label filter, tenancy)
and the `series=` / `label=` filters of anomalies and stats (real Postgres)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.anomaly.conftest import create_detector, ingest, noise, series, stamp
from tests.conftest import auth_headers


def labelled(detector_id: str, values: Any, labels: dict[str, str], **kw: Any) -> list[dict]:
    return [{**p, "labels": labels} for p in series(detector_id, values, **kw)]


async def series_list(client: httpx.AsyncClient, detector_id: str, **params: Any) -> Any:
    got = await client.get(
        f"/api/v1/detectors/{detector_id}/series", params=params, headers=auth_headers()
    )
    assert got.status_code == 200, got.text
    return got.json()


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> httpx.Response:
    return await client.get(path, params=params, headers=auth_headers())


async def test_series_list_pages_and_filters(client: httpx.AsyncClient) -> None:
    await create_detector(client, "paged", algorithm="ewma", group_by=["host", "zone"])
    for k in range(5):
        await ingest(client, labelled("paged", [1.0], {"host": f"h{k}", "zone": f"z{k % 2}"}))
    first = await series_list(client, "paged", limit=2)
    assert len(first["data"]) == 2 and first["next_cursor"]
    second = await series_list(client, "paged", limit=2, cursor=first["next_cursor"])
    third = await series_list(client, "paged", limit=2, cursor=second["next_cursor"])
    assert third["next_cursor"] is None
    hosts = [s["labels"]["host"] for page in (first, second, third) for s in page["data"]]
    assert hosts == ["h0", "h1", "h2", "h3", "h4"]
    zone = await series_list(client, "paged", label="zone=z1")
    assert [s["labels"]["host"] for s in zone["data"]] == ["h1", "h3"]
    missing = await client.get("/api/v1/detectors/nope/series", headers=auth_headers())
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = await client.get(
        "/api/v1/detectors/paged/series", params={"label": "zone"}, headers=auth_headers()
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


async def test_series_are_per_account(client: httpx.AsyncClient) -> None:
    await create_detector(client, "mine", algorithm="ewma", account="acct-s1")
    await ingest(client, labelled("mine", [1.0], {"host": "a"}), account="acct-s1")
    other = await client.get("/api/v1/detectors/mine/series", headers=auth_headers("acct-s2"))
    assert other.status_code == 404


async def test_anomalies_and_stats_filter_by_series_and_labels(client: httpx.AsyncClient) -> None:
    await create_detector(client, "zones", algorithm="static", params={"upper": 150})
    spikes = {("a", "eu"): [3], ("b", "eu"): [5, 6], ("c", "us"): [7]}
    for (host, zone), at in spikes.items():
        values = [100.0] * 10
        for i in at:
            values[i] = 200.0
        assert (
            await ingest(client, labelled("zones", values, {"host": host, "zone": zone}))
        ).json()["accepted"] == 10
    listed = {
        tuple(s["labels"].values()): s["id"] for s in (await series_list(client, "zones"))["data"]
    }

    def hosts(page: httpx.Response) -> list[tuple[str, str]]:
        assert page.status_code == 200, page.text
        return [(a["labels"]["host"], a["timestamp"]) for a in page.json()["data"]]

    every = hosts(await get(client, "/api/v1/anomalies", detector_id="zones"))
    assert len(every) == 4
    eu = hosts(await get(client, "/api/v1/anomalies", detector_id="zones", label="zone=eu"))
    assert eu == [("b", stamp(6)), ("b", stamp(5)), ("a", stamp(3))]
    both = await client.get("/api/v1/anomalies?label=zone=eu&label=host=a", headers=auth_headers())
    assert hosts(both) == [("a", stamp(3))]
    one = hosts(await get(client, "/api/v1/anomalies", series=listed[("b", "eu")]))
    assert one == [("b", stamp(6)), ("b", stamp(5))]
    assert hosts(await get(client, "/api/v1/anomalies", label="zone=asia")) == []

    stats = (await get(client, "/api/v1/stats", detector_id="zones", label="zone=eu")).json()
    assert (stats["account"]["points"], stats["account"]["anomalies"]) == (20, 3)
    stats = (await get(client, "/api/v1/stats", series=listed[("c", "us")])).json()
    assert [d["detector_id"] for d in stats["detectors"]] == ["zones"]
    assert (stats["account"]["points"], stats["account"]["anomalies"]) == (10, 1)

    unknown = await get(client, "/api/v1/anomalies", series=999_999)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    await create_detector(client, "other-zones", algorithm="static", params={"upper": 150})
    mismatch = await get(
        client, "/api/v1/stats", detector_id="other-zones", series=listed[("a", "eu")]
    )
    assert mismatch.status_code == 404
    bad = await get(client, "/api/v1/anomalies", label="zone")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


async def test_an_anomaly_has_its_labels_and_neighbours_of_its_own_series(
    client: httpx.AsyncClient,
) -> None:
    await create_detector(client, "nb", algorithm="static", params={"upper": 150})
    await ingest(client, labelled("nb", [1.0, 2.0, 300.0, 4.0], {"host": "x"}))
    await ingest(client, labelled("nb", [50.0, 60.0, 70.0, 80.0], {"host": "y"}))
    (anomaly,) = (await get(client, "/api/v1/anomalies", detector_id="nb")).json()["data"]
    assert anomaly["labels"] == {"host": "x"}
    detail = (await get(client, f"/api/v1/anomalies/{anomaly['id']}", neighbours=5)).json()
    assert detail["labels"] == {"host": "x"}
    assert [n["value"] for n in detail["neighbours"]] == [1.0, 2.0, 300.0, 4.0]


async def test_backtest_replays_the_history_of_one_series(client: httpx.AsyncClient) -> None:
    await create_detector(client, "bt", algorithm="ewma", group_by=["host"])
    await ingest(client, labelled("bt", noise(40, seed=1), {"host": "x", "pod": "1"}))
    await ingest(client, labelled("bt", noise(25, seed=2), {"host": "y"}))
    for labels, count in (({"host": "x"}, 40), ({"host": "y", "pod": "9"}, 25), (None, 0)):
        body: dict[str, Any] = {} if labels is None else {"labels": labels}
        got = await client.post("/api/v1/detectors/bt/backtest", json=body, headers=auth_headers())
        assert got.status_code == 200, got.text
        assert got.json()["count"] == count, labels


async def test_stats_by_series_carry_the_labels(client: httpx.AsyncClient) -> None:
    await create_detector(client, "st-series", algorithm="static", params={"upper": 150})
    await ingest(client, labelled("st-series", [1.0, 200.0, 3.0], {"host": "x"}))
    await ingest(client, labelled("st-series", [1.0, 2.0], {"host": "y"}))
    plain = (await get(client, "/api/v1/stats", detector_id="st-series")).json()
    assert "series" not in plain["detectors"][0]
    assert plain["detectors"][0]["points"] == 5
    got = (await get(client, "/api/v1/stats", detector_id="st-series", by_series="true")).json()
    (detector,) = got["detectors"]
    assert (detector["points"], detector["anomalies"]) == (5, 1)
    assert [(s["labels"], s["points"], s["anomalies"]) for s in detector["series"]] == [
        ({"host": "x"}, 3, 1),
        ({"host": "y"}, 2, 0),
    ]
    await create_detector(client, "st-empty", algorithm="ewma")
    empty = (await get(client, "/api/v1/stats", detector_id="st-empty", by_series="true")).json()
    assert empty["detectors"][0]["series"] == [] and empty["detectors"][0]["points"] == 0
