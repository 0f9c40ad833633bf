"""`no_data_seconds` on the detector routes: off by default, set at create and PATCH,
turned off with null, bounds and types checked (422 naming the field, nothing written)."""

from __future__ import annotations

import httpx
import pytest

from tests.anomaly.conftest import create_detector
from tests.conftest import auth_headers


async def test_off_by_default_set_and_cleared(client: httpx.AsyncClient) -> None:
    created = await create_detector(client, "nd-default")
    assert created["no_data_seconds"] is None
    watched = await create_detector(client, "nd-set", no_data_seconds=900)
    assert watched["no_data_seconds"] == 900
    got = await client.get("/api/v1/detectors/nd-set", headers=auth_headers())
    assert got.json()["no_data_seconds"] == 900
    listed = await client.get("/api/v1/detectors", headers=auth_headers())
    by_id = {d["id"]: d["no_data_seconds"] for d in listed.json()["data"]}
    assert by_id["nd-set"] == 900 and by_id["nd-default"] is None

    patched = await client.patch(
        "/api/v1/detectors/nd-default", json={"no_data_seconds": 60}, headers=auth_headers()
    )
    assert patched.status_code == 200 and patched.json()["no_data_seconds"] == 60
    # a PATCH without it keeps it
    renamed = await client.patch(
        "/api/v1/detectors/nd-default", json={"name": "renamed"}, headers=auth_headers()
    )
    assert renamed.json()["no_data_seconds"] == 60
    cleared = await client.patch(
        "/api/v1/detectors/nd-default", json={"no_data_seconds": None}, headers=auth_headers()
    )
    assert cleared.status_code == 200 and cleared.json()["no_data_seconds"] is None


@pytest.mark.parametrize(
    ("n", "value"), list(enumerate([59, 0, -60, 30 * 86400 + 1, "900", 900.5, True, [900]]))
)
async def test_out_of_bounds_or_not_an_integer_is_a_422(
    client: httpx.AsyncClient, n: int, value: object
) -> None:
    body = {"id": "nd-bad", "name": "bad", "no_data_seconds": value}
    answer = await client.post("/api/v1/detectors", json=body, headers=auth_headers())
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert "no_data_seconds" in str(error)
    missing = await client.get("/api/v1/detectors/nd-bad", headers=auth_headers())
    assert missing.status_code == 404  # nothing written

    await create_detector(client, f"nd-patched-{n}", no_data_seconds=600)
    patched = await client.patch(
        f"/api/v1/detectors/nd-patched-{n}", json={"no_data_seconds": value}, headers=auth_headers()
    )
    assert patched.status_code == 422, patched.text
    assert "no_data_seconds" in str(patched.json()["error"])
    kept = await client.get(f"/api/v1/detectors/nd-patched-{n}", headers=auth_headers())
    assert kept.json()["no_data_seconds"] == 600


async def test_the_bounds_themselves_are_accepted(client: httpx.AsyncClient) -> None:
    low = await create_detector(client, "nd-low", no_data_seconds=60)
    high = await create_detector(client, "nd-high", no_data_seconds=30 * 86400)
    assert (low["no_data_seconds"], high["no_data_seconds"]) == (60, 30 * 86400)
