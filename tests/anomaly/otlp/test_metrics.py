"""POST /v1/metrics: OTLP requests (opentelemetry-proto messages, protobuf or OTLP/JSON,
gzip or not) routed by metric name and label filters, stored and scored as any ingest;
partial_success, malformed bodies, authentication, content types."""

from __future__ import annotations

import gzip
import math
from datetime import timedelta
from typing import Any

import httpx
from prometheus_client import REGISTRY

from tests.anomaly.conftest import T0, create_detector, stored_points
from tests.anomaly.otlp.support import (
    JSON,
    PROTOBUF,
    gauge,
    json_body,
    metrics_request,
    protobuf_body,
    response_of,
)
from tests.conftest import account_jwt, auth_headers

PATH = "/v1/metrics"


def otlp(metric: str, match: dict[str, str] | None = None) -> dict[str, Any]:
    return {"type": "otlp", "metric": metric, **({"match": match} if match else {})}


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("nsentry_otlp_data_points_total", {"outcome": outcome}) or 0.0


async def post(
    client: httpx.AsyncClient, content: bytes, *, account: str = "primary", **headers: str
) -> httpx.Response:
    return await client.post(
        PATH, content=content, headers={**auth_headers(account), **PROTOBUF, **headers}
    )


async def points(database_url: str, detector_id: str, account: str) -> list[tuple[Any, ...]]:
    """The stored (labels, ts, value) of a detector, read as the owner."""
    return await stored_points(database_url, detector_id, account)


def minutes(n: int) -> list[Any]:
    return [T0 + timedelta(minutes=i) for i in range(n)]


async def test_points_go_to_detectors_by_metric_name_and_label_filters(
    client: httpx.AsyncClient, database_url: str
) -> None:
    acct = "otlp-route"
    await create_detector(
        client,
        "checkout",
        account=acct,
        metric_source=otlp("http.server.active_requests", {"service_name": "checkout"}),
        group_by=["instance"],
    )
    await create_detector(
        client, "every", account=acct, metric_source=otlp("http.server.active_requests")
    )
    await create_detector(client, "other", account=acct, metric_source=otlp("queue.depth"))
    await create_detector(client, "pushed", account=acct)  # a push detector takes nothing
    times = minutes(3)
    before = {k: counted(k) for k in ("routed", "no_detector")}
    request = metrics_request(
        [
            (
                {"service.name": "checkout", "instance": "a"},
                [
                    (
                        "http.server.active_requests",
                        "gauge",
                        [({"http.route": "/pay"}, t, 10 + i) for i, t in enumerate(times)],
                    ),
                    ("process.cpu", "gauge", [({}, times[0], 0.5)]),  # nobody's
                ],
            ),
            (
                {"service.name": "web"},
                [
                    (
                        "http.server.active_requests",
                        "sum",  # a cumulative sum: stored as sent
                        [({"instance": "b"}, t, 100.0 * (i + 1)) for i, t in enumerate(times)],
                    )
                ],
            ),
        ]
    )
    response = await post(client, protobuf_body(request), account=acct)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not response_of(response.content, "application/x-protobuf").HasField("partial_success")
    assert await points(database_url, "checkout", acct) == [
        ({"instance": "a"}, t, float(10 + i)) for i, t in enumerate(times)
    ]
    every = await points(database_url, "every", acct)
    assert sorted({tuple(sorted(labels.items())) for labels, _, _ in every}) == [
        (("http_route", "/pay"), ("instance", "a"), ("service_name", "checkout")),
        (("instance", "b"), ("service_name", "web")),
    ]
    assert [v for labels, _, v in every if labels["instance"] == "b"] == [100.0, 200.0, 300.0]
    assert await points(database_url, "other", acct) == []
    assert await points(database_url, "pushed", acct) == []
    assert counted("routed") - before["routed"] == 6
    assert counted("no_detector") - before["no_detector"] == 1
    # the same request again (an exporter's retry): duplicates, nothing stored twice
    again = await post(client, protobuf_body(request), account=acct)
    assert again.status_code == 200
    assert len(await points(database_url, "every", acct)) == 6


async def test_otlp_json_and_gzip_are_read_and_answered_in_kind(
    client: httpx.AsyncClient, database_url: str
) -> None:
    acct = "otlp-enc"
    await create_detector(client, "g", account=acct, metric_source=otlp("g"), group_by=["i"])
    times = minutes(4)

    def one(i: int) -> Any:
        return gauge("g", [({"i": "x"}, times[i], float(i))])

    cases = [
        (protobuf_body(one(0), gzipped=True), {**PROTOBUF, "Content-Encoding": "gzip"}),
        (json_body(one(1)), JSON),
        (gzip.compress(json_body(one(2))), {**JSON, "Content-Encoding": "gzip"}),
        (json_body(one(3)), {"Content-Type": "application/json; charset=utf-8"}),
    ]
    for content, headers in cases:
        response = await client.post(
            PATH, content=content, headers={**auth_headers(acct), **headers}
        )
        assert response.status_code == 200, response.text
        media = headers["Content-Type"].split(";")[0]
        assert response.headers["content-type"] == media
        if media == "application/json":
            assert response.json() == {}
    stored = await points(database_url, "g", acct)
    assert [(t, v) for _, t, v in stored] == [(t, float(i)) for i, t in enumerate(times)]
    # OTLP/JSON as the spec writes it: lowerCamelCase, int64 as strings, enums as integers,
    # hex trace ids in exemplars, unknown fields ignored
    hand_written = {
        "resourceMetrics": [
            {
                "resource": {"attributes": [{"key": "i", "value": {"stringValue": "y"}}]},
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "g",
                                "unit": "1",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": str(int(T0.timestamp()) * 10**9),
                                            "asInt": "42",
                                            "exemplars": [
                                                {
                                                    "traceId": "5b8efff798038103d269b633813fc60c",
                                                    "spanId": "eee19b7ec3c1b174",
                                                    "asDouble": 1.0,
                                                    "timeUnixNano": "1",
                                                }
                                            ],
                                        }
                                    ],
                                },
                                "someFutureField": {"x": 1},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    response = await client.post(PATH, json=hand_written, headers=auth_headers(acct))
    assert response.status_code == 200, response.text
    assert [(lb, v) for lb, _, v in await points(database_url, "g", acct) if lb["i"] == "y"] == [
        ({"i": "y"}, 42.0)
    ]


async def test_refused_points_are_a_partial_success_and_the_rest_is_stored(
    client: httpx.AsyncClient, database_url: str
) -> None:
    acct = "otlp-partial"
    await create_detector(
        client, "capped", account=acct, metric_source=otlp("m"), group_by=["i"], max_series=2
    )
    refused_before = REGISTRY.get_sample_value("nsentry_series_refused_total") or 0.0
    before = {k: counted(k) for k in ("not_finite", "unsupported_type", "routed")}
    request = metrics_request(
        [
            (
                {},
                [
                    (
                        "m",
                        "gauge",
                        [
                            ({"i": "a"}, T0, 1.0),
                            ({"i": "b"}, T0, 2.0),
                            ({"i": "c"}, T0, 3.0),  # a third series: past max_series
                            ({"i": "a"}, T0 + timedelta(minutes=1), math.nan),
                        ],
                    ),
                    ("m", "histogram", [({"i": "a"}, T0, 1.0)]),
                ],
            )
        ]
    )
    for content, headers in ((protobuf_body(request), PROTOBUF), (json_body(request), JSON)):
        response = await client.post(
            PATH, content=content, headers={**auth_headers(acct), **headers}
        )
        assert response.status_code == 200, response.text
        partial = response_of(response.content, headers["Content-Type"]).partial_success
        assert partial.rejected_data_points == 2, partial
        message = partial.error_message
        assert "1 data point not finite" in message, message
        assert "1 data point past their detector's max_series" in message, message
        assert "(first: detector 'capped', new series {i=\"c\"})" in message, message
        assert "1 data point of histograms" in message, message
    # the JSON answer as an exporter reads it: int64 as a string
    assert response.json()["partialSuccess"]["rejectedDataPoints"] == "2"
    stored = await points(database_url, "capped", acct)
    assert sorted((lb["i"], v) for lb, _, v in stored) == [("a", 1.0), ("b", 2.0)]
    refused = (REGISTRY.get_sample_value("nsentry_series_refused_total") or 0.0) - refused_before
    assert refused == 2  # once per request
    assert counted("not_finite") - before["not_finite"] == 2
    assert counted("unsupported_type") - before["unsupported_type"] == 2
    assert counted("routed") - before["routed"] == 6


async def test_malformed_bodies_are_400_with_the_envelope_and_nothing_written(
    client: httpx.AsyncClient, database_url: str
) -> None:
    acct = "otlp-bad"
    await create_detector(client, "m", account=acct, metric_source=otlp("m"))
    good = protobuf_body(gauge("m", [({}, T0, 1.0)]))
    cases = [
        (b"\x0a\xff\xff\xff\x0f", PROTOBUF, "protobuf"),  # a length past the end
        (good[:-3], PROTOBUF, "protobuf"),  # truncated
        (b"\xff\xff\xff", {**PROTOBUF, "Content-Encoding": "gzip"}, "gzip"),
        (gzip.compress(good)[:-8], {**PROTOBUF, "Content-Encoding": "gzip"}, "truncated"),
        (b"{not json", JSON, "not JSON"),
        (b"", JSON, "not JSON"),
        (b"[]", JSON, "an object"),
        (b'{"resourceMetrics": 5}', JSON, "OTLP/JSON"),
        (b'{"resourceMetrics": ["AAA"]}', JSON, "resourceMetrics[0]: a message"),
        (b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"gauge": 1}]}]}]}', JSON, ""),
    ]
    for content, headers, says in cases:
        response = await client.post(
            PATH, content=content, headers={**auth_headers(acct), **headers}
        )
        assert response.status_code == 400, (says, response.text)
        error = response.json()["error"]
        assert error["code"] == "bad_request" and says in error["message"], response.text
    assert await points(database_url, "m", acct) == []


async def test_content_type_encoding_auth_and_size(
    client: httpx.AsyncClient, settings: Any, database_url: str
) -> None:
    acct = "otlp-415"
    await create_detector(client, "m", account=acct, metric_source=otlp("m"))
    content = protobuf_body(gauge("m", [({}, T0, 1.0)]))
    for headers in (
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"},
    ):
        response = await client.post(
            PATH, content=content, headers={**auth_headers(acct), **headers}
        )
        assert response.status_code == 415, response.text
        error = response.json()["error"]
        assert error["code"] == "unsupported_media_type"
        assert error["details"]["accepted"] == ["application/x-protobuf", "application/json"]
    no_type = await client.post(PATH, content=content, headers=auth_headers(acct))
    assert no_type.status_code == 415
    assert await points(database_url, "m", acct) == []  # nothing of a refused body
    unauth = await client.post(PATH, content=content, headers=PROTOBUF)
    assert unauth.status_code == 401 and unauth.json()["error"]["code"] == "unauthorized"
    wrong = await client.post(
        PATH, content=content, headers={**PROTOBUF, "Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    # without a bearer nothing else is said, whatever the body
    assert (await client.post(PATH, content=content, headers=JSON)).status_code == 401
    get = await client.get(PATH, headers=auth_headers())
    assert get.status_code == 405 and get.headers["allow"] == "POST", get.text
    assert (await client.get(PATH)).status_code == 401
    big = b"\x00" * (settings.max_body_bytes + 1)
    over = await client.post(PATH, content=big, headers={**auth_headers(), **PROTOBUF})
    assert over.status_code == 413 and over.json()["error"]["code"] == "payload_too_large"
    # a small gzip body inflating past the decompressed limit: 413, stopped there
    bomb = gzip.compress(b"\x00" * (65 * 1024 * 1024))
    assert len(bomb) < settings.max_body_bytes
    response = await client.post(
        PATH, content=bomb, headers={**auth_headers(), **PROTOBUF, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413, response.text


async def test_a_jwt_authenticates_and_accounts_stay_apart(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await create_detector(client, "mine", account="otlp-jwt", metric_source=otlp("m"))
    await create_detector(client, "theirs", account="otlp-other", metric_source=otlp("m"))
    await create_detector(client, "off", account="otlp-jwt", metric_source=otlp("m"), enabled=False)
    token = account_jwt("otlp-jwt", seconds=600)
    response = await client.post(
        PATH,
        content=protobuf_body(gauge("m", [({}, T0, 4.0)])),
        headers={**PROTOBUF, "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    assert [v for _, _, v in await points(database_url, "mine", "otlp-jwt")] == [4.0]
    assert await points(database_url, "theirs", "otlp-other") == []
    assert await points(database_url, "off", "otlp-jwt") == []


async def test_an_otlp_source_is_validated_at_create_and_patch(client: httpx.AsyncClient) -> None:
    acct = "otlp-422"
    bad = [
        ({"type": "otlp"}, "metric_source.metric: an otlp source needs"),
        ({"type": "otlp", "metric": "m", "match": "up"}, "an object of label filters"),
        ({"type": "otlp", "metric": "m", "match": {"service.name": "x"}}, "'service_name'"),
        ({"type": "otlp", "metric": "m", "match": {"code": 200}}, "the exact value, a string"),
    ]
    for source, says in bad:
        response = await client.post(
            "/api/v1/detectors",
            json={"name": "x", "metric_source": source},
            headers=auth_headers(acct),
        )
        assert response.status_code == 422, response.text
        assert says in response.text, response.text
    created = await create_detector(
        client, "ok", account=acct, metric_source=otlp("m", {"service_name": "x"})
    )
    assert created["metric_source"] == {
        "type": "otlp",
        "metric": "m",
        "match": {"service_name": "x"},
    }
    patched = await client.patch(
        "/api/v1/detectors/ok",
        json={"metric_source": {"type": "otlp", "metric": ""}},
        headers=auth_headers(acct),
    )
    assert patched.status_code == 422, patched.text
