"""``POST /v1/metrics``: the OTLP/HTTP metrics receiver.

Its bodies are binary protobuf or OTLP/JSON, either possibly gzip-compressed, which
the request guard (``common.guard``, JSON only, and no Content-Encoding) is not
for; so, as remote write does, the path is answered by a raw ASGI shim ahead of
the guard (``OtlpShim``, a ``common.wire.WireShim``: body limit and 413, request
metrics, authentication, the error envelope). The documented route is the
OpenAPI entry and serves the same handler.

Answers, as the OTLP/HTTP spec wants them: 200 with an
``ExportMetricsServiceResponse`` in the request's encoding (its
``partial_success`` says how many data points were refused and why); 400 for a
body that is not an ``ExportMetricsServiceRequest`` (nothing written; exporters do
not retry it); 401 without a valid bearer; 413 over the size limit; 415 for another
Content-Type or Content-Encoding; 503 with ``Retry-After`` while the database is
unreachable (exporters retry). Errors carry the service's error envelope (JSON),
not a ``google.rpc.Status``: exporters go by the status code and ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.datastructures import Headers

from services.anomaly.otlp.decode import (
    ENCODINGS,
    JSON,
    MEDIA_TYPES,
    PROTOBUF,
    decode,
    encode,
    encoding_of,
    media_of,
)
from services.anomaly.otlp.receive import receive
from services.common.auth import Caller
from services.common.responses import errors
from services.common.wire import WireShim, unsupported_media_type

PATH = "/v1/metrics"

router = APIRouter()


def unsupported(headers: Headers, *, close: bool) -> Response | None:
    """The 415 for a Content-Type or Content-Encoding OTLP/HTTP does not use, or None."""
    given = headers.get("content-type")
    encoding = headers.get("content-encoding")
    if media_of(given) is not None and encoding_of(encoding) is not None:
        return None
    if media_of(given) is not None:
        assert encoding is not None
        message = f"an OTLP body is gzip-compressed or not at all (not {encoding[:100]!r})"
    else:
        message = f"an OTLP/HTTP body is sent with Content-Type: {PROTOBUF} or {JSON}" + (
            " (no Content-Type given)" if given is None else f" (not {given[:100]!r})"
        )
    return unsupported_media_type(
        message,
        given=None if given is None else given[:100],
        accepted=list(MEDIA_TYPES),
        encodings=list(ENCODINGS),
        close=close,
    )


async def handle_metrics(state: Any, account: str, headers: Headers, body: bytes) -> Response:
    """Decode, route, store and score, answer: ``POST /v1/metrics`` after auth and 415."""
    media = media_of(headers.get("content-type"))
    encoding = encoding_of(headers.get("content-encoding"))
    assert media is not None and encoding is not None
    request = decode(body, media, encoding)
    answer = await receive(state.ingestor, account, request)
    return Response(encode(answer, media), media_type=media)


_RESPONSE_JSON = {
    "type": "object",
    "description": "an ExportMetricsServiceResponse in OTLP/JSON",
    "properties": {
        "partialSuccess": {
            "type": "object",
            "properties": {
                "rejectedDataPoints": {
                    "description": "an int64, written as a decimal string",
                    "anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer"}],
                },
                "errorMessage": {"type": "string"},
            },
        }
    },
}
_METRICS_BODY = {
    "requestBody": {
        "required": True,
        "description": (
            "an ExportMetricsServiceRequest (opentelemetry-proto collector/metrics/v1), as "
            f"binary protobuf ({PROTOBUF}) or OTLP/JSON ({JSON}); either may be sent with "
            "Content-Encoding: gzip"
        ),
        "content": {
            PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
            JSON: {
                "schema": {
                    "type": "object",
                    "description": "OTLP/JSON: lowerCamelCase field names, unknown ones ignored",
                    "properties": {
                        # the protobuf JSON mapping: null is the field's default
                        "resourceMetrics": {
                            "type": ["array", "null"],
                            "items": {"type": "object"},
                        }
                    },
                }
            },
        },
    }
}


@router.post(
    PATH,
    tags=["ingest"],
    summary="OTLP/HTTP metrics: gauge and sum data points routed to otlp detectors",
    description=(
        "What an OpenTelemetry SDK's or Collector's OTLP/HTTP exporter sends (authorization: "
        "the plugin secret with the X-Hasura-Source-Account-Id header, or a JWT). Each gauge "
        "and sum data point is stored and scored by every enabled detector of the account "
        'whose metric_source is `{"type": "otlp", "metric": "<its metric name>", "match": '
        "{label filters}}` and whose filters hold; resource and point attributes make its "
        "labels (names as label names: `service.name` -> `service_name`; the point's win), "
        "then group_by picks the series. Histograms, exponential histograms and summaries "
        "are skipped; every data point is counted by outcome "
        "(nsentry_otlp_data_points_total). 200 with an ExportMetricsServiceResponse in the "
        "request's encoding, whose partial_success counts the data points refused (not "
        "finite, a timestamp out of range, labels a series cannot have, past max_series); "
        "400 for a body that is not an ExportMetricsServiceRequest: nothing is written; "
        "503 while the database is unreachable (retry)."
    ),
    response_class=Response,
    openapi_extra=_METRICS_BODY,
    responses={
        200: {
            "description": "stored and scored; partial_success names what was refused",
            "content": {
                PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                JSON: {"schema": _RESPONSE_JSON},
            },
        },
        **errors(
            400,
            413,
            415,
            d400="not an ExportMetricsServiceRequest (protobuf or OTLP/JSON), or not gzip",
            d415=f"not Content-Type: {PROTOBUF} or {JSON} (or a Content-Encoding but gzip)",
        ),
    },
)
async def metrics(request: Request, caller: Caller) -> Response:
    refusal = unsupported(request.headers, close=False)
    if refusal is not None:
        return refusal
    return await handle_metrics(
        request.app.state, caller.account_id, request.headers, await request.body()
    )


class OtlpShim(WireShim):
    """Pure ASGI: ``POST /v1/metrics`` answered by ``handle_metrics`` ahead of the
    guard; anything else goes down the stack."""

    path = PATH

    def refuse(self, headers: Headers, media: bytes | None) -> Response | None:
        return unsupported(headers, close=True)

    async def handle(self, state: Any, account: str, headers: Headers, body: bytes) -> Response:
        return await handle_metrics(state, account, headers, body)
