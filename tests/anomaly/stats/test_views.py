"""Feedback on a constructed set gives the exact false-positive rate in /stats."""

from __future__ import annotations

import httpx

from tests.anomaly.conftest import create_detector, ingest, series, stamp
from tests.conftest import auth_headers


async def _feedback(client: httpx.AsyncClient, ids: list[int], status: str) -> None:
    for anomaly_id in ids:
        response = await client.patch(
            f"/api/v1/anomalies/{anomaly_id}",
            json={"status": status, "note": f"marked {status}"},
            headers=auth_headers(),
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
        assert (response.json()["reviewed_at"] is None) == (status == "open")


async def test_false_positive_rate_is_exact(client: httpx.AsyncClient) -> None:
    h = auth_headers()
    for name in ("s1", "s2", "s3"):
        await create_detector(client, name, algorithm="static", params={"upper": 10})
    s1 = [1.0] * 100
    for i in range(10, 100, 9):  # 10 anomalies
        s1[i] = 11.0
    s2 = [1.0] * 50
    for i in (5, 20, 30, 40):  # 4 anomalies
        s2[i] = 12.0
    s3 = [1.0] * 20
    s3[10] = 50.0
    a1 = (await ingest(client, series("s1", s1))).json()["anomalies"]
    a2 = (await ingest(client, series("s2", s2))).json()["anomalies"]
    a3 = (await ingest(client, series("s3", s3))).json()["anomalies"]
    assert (len(a1), len(a2), len(a3)) == (10, 4, 1)
    ids1, ids2 = [a["id"] for a in a1], [a["id"] for a in a2]
    await _feedback(client, ids1[:3], "confirmed")
    await _feedback(client, ids1[3:8], "false_positive")
    await _feedback(client, ids1[8:9], "resolved")  # ids1[9] stays open
    await _feedback(client, ids2[:1], "confirmed")
    await _feedback(client, ids2[1:2], "false_positive")

    stats = (await client.get("/api/v1/stats", headers=h)).json()
    per = {d["detector_id"]: d for d in stats["detectors"]}
    assert per["s1"]["false_positive_rate"] == 5 / 8
    assert per["s1"] | {"false_positive_rate": None} == {
        "detector_id": "s1",
        "points": 100,
        "anomalies": 10,
        "by_severity": {"warning": 0, "critical": 10},
        "reviewed": 9,
        "confirmed": 3,
        "false_positives": 5,
        "resolved": 1,
        "false_positive_rate": None,
    }
    assert per["s2"]["false_positive_rate"] == 1 / 2
    assert per["s3"]["false_positive_rate"] is None and per["s3"]["reviewed"] == 0
    account = stats["account"]
    assert account["points"] == 170 and account["anomalies"] == 15
    assert account["false_positives"] == 6 and account["confirmed"] == 4
    assert account["false_positive_rate"] == 6 / 10

    # a window: s1's anomalies at 10, 19, 28 (confirmed) and 37 (fp) fall in [0, 40)
    window = (await client.get(f"/api/v1/stats?until={stamp(40)}&detector_id=s1", headers=h)).json()
    assert [d["detector_id"] for d in window["detectors"]] == ["s1"]
    assert window["account"]["points"] == 40 and window["account"]["anomalies"] == 4
    assert window["account"]["false_positive_rate"] == 1 / 4
    empty = (await client.get(f"/api/v1/stats?since={stamp(5000)}", headers=h)).json()
    assert empty["account"]["points"] == 0 and empty["account"]["false_positive_rate"] is None

    # reopening clears the review; feedback filter on the list
    await _feedback(client, ids1[:1], "open")
    reopened = (await client.get(f"/api/v1/anomalies/{ids1[0]}", headers=h)).json()
    assert reopened["reviewed_at"] is None and reopened["note"] == "marked open"
    fps = (await client.get("/api/v1/anomalies?status=false_positive", headers=h)).json()
    assert sorted(a["id"] for a in fps["data"]) == sorted(ids1[3:8] + ids2[1:2])
    bad = await client.patch(f"/api/v1/anomalies/{ids1[0]}", json={"status": "meh"}, headers=h)
    assert bad.status_code == 422
