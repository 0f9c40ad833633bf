"""POST /api/v1/write: remote-write bodies (built by the generated protobuf classes)
routed to the detectors whose selector matches, stored and scored as any ingest."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import cramjam
import httpx
from prometheus_client import REGISTRY

from tests.anomaly.conftest import T0, create_detector, noise, stored_points
from tests.anomaly.remote_write.support import HEADERS, STALE_NAN, body, scored, write_request
from tests.conftest import account_jwt, auth_headers

RW = "/api/v1/write"


def rw_source(selector: str) -> dict[str, str]:
    return {"type": "remote_write", "match": selector}


def samples_counted(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("nsentry_remote_write_samples_total", {"outcome": outcome}) or 0.0
    )


async def post(
    client: httpx.AsyncClient, content: bytes, *, account: str = "primary", **headers: str
) -> httpx.Response:
    """Post a body and, once answered, wait until the accepted samples are scored."""
    response = await client.post(
        RW, content=content, headers={**auth_headers(account), **HEADERS, **headers}
    )
    await scored(client)
    return response


async def points(database_url: str, detector_id: str, account: str) -> list[dict[str, Any]]:
    """The stored points of a detector (every series), read as the owner."""
    return [
        {"labels": labels, "ts": ts, "value": value}
        for labels, ts, value in await stored_points(database_url, detector_id, account)
    ]


async def series_of(client: httpx.AsyncClient, detector_id: str, account: str) -> list[Any]:
    response = await client.get(
        f"/api/v1/detectors/{detector_id}/series", headers=auth_headers(account)
    )
    assert response.status_code == 200, response.text
    found = [(s["labels"], s["counts"]["points"]) for s in response.json()["data"]]
    return sorted(found, key=lambda pair: sorted(pair[0].items()))


async def test_samples_go_to_every_matching_detector_by_series(
    client: httpx.AsyncClient, database_url: str
) -> None:
    acct = "rw-route"
    await create_detector(
        client,
        "api-5xx",
        account=acct,
        metric_source=rw_source('http_requests_total{job="api", code=~"5.."}'),
        group_by=["instance"],
    )
    await create_detector(
        client, "all-http", account=acct, metric_source=rw_source('{__name__=~"http_.*"}')
    )
    await create_detector(client, "pushed", account=acct)  # a push detector takes nothing
    values = noise(5)
    times = [T0 + timedelta(minutes=i) for i in range(5)]

    def http(instance: str, code: str) -> tuple[dict[str, str], list[Any]]:
        labels = {"__name__": "http_requests_total", "job": "api", "code": code}
        return {**labels, "instance": instance}, list(zip(times, values, strict=True))

    unmatched_before = samples_counted("no_detector")
    content = body(
        [
            http("a", "500"),
            http("b", "503"),
            http("a", "200"),  # only all-http
            ({"__name__": "node_load1", "instance": "a"}, [(times[0], 1.0)]),  # nobody
        ]
    )
    response = await post(client, content, account=acct)
    assert response.status_code == 204, response.text
    assert response.content == b""
    # group_by instance: one series per instance, __name__/job/code dropped
    assert await series_of(client, "api-5xx", acct) == [
        ({"instance": "a"}, 5),
        ({"instance": "b"}, 5),
    ]
    # no group_by: every label but __name__ makes the series
    assert await series_of(client, "all-http", acct) == [
        ({"code": "200", "instance": "a", "job": "api"}, 5),
        ({"code": "500", "instance": "a", "job": "api"}, 5),
        ({"code": "503", "instance": "b", "job": "api"}, 5),
    ]
    stored = await points(database_url, "api-5xx", acct)
    a_points = [(p["ts"], p["value"]) for p in stored if p["labels"] == {"instance": "a"}]
    assert a_points == list(zip(times, [float(v) for v in values], strict=True))
    assert (await points(database_url, "pushed", acct)) == []
    assert samples_counted("no_detector") - unmatched_before == 1
    # the same request again (a retry): duplicates, nothing stored twice
    again = await post(client, content, account=acct)
    assert again.status_code == 204
    assert await series_of(client, "api-5xx", acct) == [
        ({"instance": "a"}, 5),
        ({"instance": "b"}, 5),
    ]


async def test_group_by_naming___name___keeps_it(client: httpx.AsyncClient) -> None:
    acct = "rw-name"
    await create_detector(
        client,
        "by-metric",
        account=acct,
        metric_source=rw_source('{__name__=~"cpu_.*", job="node"}'),
        group_by=["__name__"],
    )
    content = body(
        [
            ({"__name__": "cpu_user", "job": "node"}, [(T0, 1.0)]),
            ({"__name__": "cpu_system", "job": "node"}, [(T0, 2.0)]),
        ]
    )
    assert (await post(client, content, account=acct)).status_code == 204
    assert await series_of(client, "by-metric", acct) == [
        ({"__name__": "cpu_system"}, 1),
        ({"__name__": "cpu_user"}, 1),
    ]


async def test_stale_markers_and_nan_are_skipped_and_counted(
    client: httpx.AsyncClient, database_url: str
) -> None:
    acct = "rw-nan"
    await create_detector(client, "up", account=acct, metric_source=rw_source("up"))
    before = {k: samples_counted(k) for k in ("stale", "not_finite", "routed", "out_of_range")}
    samples = [
        (T0, 1.0),
        (T0 + timedelta(minutes=1), STALE_NAN),
        (T0 + timedelta(minutes=2), math.nan),
        (T0 + timedelta(minutes=3), math.inf),
        (T0 + timedelta(minutes=4), 2.0),
        (-1000, 3.0),  # before 1970
    ]
    response = await post(client, body([({"__name__": "up", "job": "x"}, samples)]), account=acct)
    assert response.status_code == 204, response.text
    stored = await points(database_url, "up", acct)
    assert sorted(p["value"] for p in stored) == [1.0, 2.0]
    after = {k: samples_counted(k) - before[k] for k in before}
    assert after == {"stale": 1, "not_finite": 2, "routed": 2, "out_of_range": 1}


async def test_disabled_detectors_and_other_accounts_take_nothing(
    client: httpx.AsyncClient,
    database_url: str,
) -> None:
    await create_detector(
        client, "off", account="rw-off", metric_source=rw_source("up"), enabled=False
    )
    await create_detector(client, "theirs", account="rw-other", metric_source=rw_source("up"))
    content = body([({"__name__": "up"}, [(T0, 1.0)])])
    assert (await post(client, content, account="rw-off")).status_code == 204
    assert await points(database_url, "off", "rw-off") == []
    assert await points(database_url, "theirs", "rw-other") == []


async def test_malformed_bodies_are_400_with_the_envelope_and_nothing_written(
    client: httpx.AsyncClient,
    database_url: str,
) -> None:
    acct = "rw-bad"
    await create_detector(client, "up", account=acct, metric_source=rw_source("up"))
    good = ({"__name__": "up", "instance": "a"}, [(T0, 1.0)])
    many = {"__name__": "up", **{f"l{i}": "v" for i in range(999)}}
    cases = [
        (b"\xff\xff\xff\xff\xff\xff", "snappy"),  # corrupt snappy
        (body([good])[:-3], "snappy"),  # truncated snappy
        (bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff\x0f")), "WriteRequest"),
        (bytes(cramjam.snappy.compress_raw(b"not a protobuf at all")), "WriteRequest"),
        (body([good, (many, [(T0, 1.0)])]), "1000 labels"),
        (body([good, ({"__name__": "up", "bad-name": "x"}, [(T0, 1.0)])]), "label name"),
        (b"", "empty"),
    ]
    for content, says in cases:
        response = await post(client, content, account=acct)
        assert response.status_code == 400, (says, response.text)
        error = response.json()["error"]
        assert error["code"] == "bad_request" and says in error["message"], response.text
    assert await points(database_url, "up", acct) == []


async def test_content_type_auth_and_size(client: httpx.AsyncClient, settings: Any) -> None:
    content = body([({"__name__": "up"}, [(T0, 1.0)])])
    for headers in (
        {"Content-Type": "application/json"},
        {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    ):
        response = await client.post(RW, content=content, headers={**auth_headers(), **headers})
        assert response.status_code == 415, response.text
        assert response.json()["error"]["code"] == "unsupported_media_type"
    no_type = await client.post(RW, content=content, headers=auth_headers())
    assert no_type.status_code == 415
    unauth = await client.post(RW, content=content, headers=HEADERS)
    assert unauth.status_code == 401 and unauth.json()["error"]["code"] == "unauthorized"
    wrong = await client.post(
        RW, content=content, headers={**HEADERS, "Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    # without a bearer nothing else is said, whatever the body
    bare = await client.post(RW, content=content, headers={"Content-Type": "text/plain"})
    assert bare.status_code == 401
    put = await client.put(RW, content=content, headers={**auth_headers(), **HEADERS})
    assert put.status_code == 405 and put.headers["allow"] == "POST", put.text
    assert (await client.put(RW, content=content, headers=HEADERS)).status_code == 401
    big = b"\x00" * (settings.max_body_bytes + 1)
    over = await client.post(RW, content=big, headers={**auth_headers(), **HEADERS})
    assert over.status_code == 413 and over.json()["error"]["code"] == "payload_too_large"
    # a small body announcing a huge decompressed size: 413 before decompressing
    bomb = b"\xff\xff\xff\xff\x0f" + b"\x00" * 10
    assert (await post(client, bomb)).status_code == 413


async def test_a_jwt_authenticates_too(client: httpx.AsyncClient, database_url: str) -> None:
    await create_detector(client, "jwt-up", account="rw-jwt", metric_source=rw_source("up"))
    token = account_jwt("rw-jwt", seconds=600)
    response = await client.post(
        RW,
        content=body([({"__name__": "up"}, [(T0, 4.0)])]),
        headers={**HEADERS, "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 204, response.text
    await scored(client)
    assert [p["value"] for p in await points(database_url, "jwt-up", "rw-jwt")] == [4.0]


def test_the_generated_classes_round_trip() -> None:
    request = write_request([({"__name__": "up", "job": "x"}, [(T0, 1.5)])])
    parsed = type(request).FromString(request.SerializeToString())
    assert [(lb.name, lb.value) for lb in parsed.timeseries[0].labels] == [
        ("__name__", "up"),
        ("job", "x"),
    ]
    assert parsed.timeseries[0].samples[0].timestamp == int(T0.timestamp() * 1000)
