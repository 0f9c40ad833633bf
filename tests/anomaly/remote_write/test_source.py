"""A detector's `remote_write` metric source: validated at create and PATCH."""

from __future__ import annotations

import httpx

from tests.anomaly.conftest import create_detector
from tests.conftest import auth_headers

SELECTOR = 'http_requests_total{job="api", code=~"5.."}'


async def test_a_remote_write_source_is_stored_as_given(client: httpx.AsyncClient) -> None:
    source = {"type": "remote_write", "match": SELECTOR}
    created = await create_detector(client, "rw-src", metric_source=source, group_by=["instance"])
    assert created["metric_source"] == source
    again = await client.get("/api/v1/detectors/rw-src", headers=auth_headers())
    assert again.json()["metric_source"] == source
    # a push detector is unchanged: no `match` appears
    plain = await create_detector(client, "rw-push")
    assert plain["metric_source"] == {"type": "push"}


async def test_a_bad_selector_is_a_422_with_the_envelope(client: httpx.AsyncClient) -> None:
    h = auth_headers()
    for source, says in [
        ({"type": "remote_write"}, "needs a series selector"),
        ({"type": "remote_write", "match": 'up{job="api"'}, "unclosed"),
        ({"type": "remote_write", "match": 'up{code=~"5(("}'}, "regular expression"),
        ({"type": "remote_write", "match": '{job=~".*"}'}, "empty string"),
        ({"type": "remote_write", "match": {"job": "api"}}, "needs a series selector"),
    ]:
        body = {"id": "rw-bad", "name": "bad", "metric_source": source}
        response = await client.post("/api/v1/detectors", json=body, headers=h)
        assert response.status_code == 422, (source, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error", response.text
        assert "metric_source" in error["message"] and says in error["message"], response.text
    assert (await client.get("/api/v1/detectors/rw-bad", headers=h)).status_code == 404


async def test_patch_validates_the_selector_and_switches_sources(
    client: httpx.AsyncClient,
) -> None:
    h = auth_headers()
    await create_detector(client, "rw-patch")
    bad = await client.patch(
        "/api/v1/detectors/rw-patch",
        json={"metric_source": {"type": "remote_write", "match": "up{"}},
        headers=h,
    )
    assert bad.status_code == 422 and "metric_source" in bad.json()["error"]["message"]
    assert (await client.get("/api/v1/detectors/rw-patch", headers=h)).json()["metric_source"] == {
        "type": "push"
    }
    source = {"type": "remote_write", "match": 'up{job!="test"}'}
    good = await client.patch(
        "/api/v1/detectors/rw-patch", json={"metric_source": source}, headers=h
    )
    assert good.status_code == 200, good.text
    assert good.json()["metric_source"] == source
    back = await client.patch(
        "/api/v1/detectors/rw-patch", json={"metric_source": {"type": "push"}}, headers=h
    )
    assert back.json()["metric_source"] == {"type": "push"}
