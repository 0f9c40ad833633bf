"""``POST /api/v1/write``: the Prometheus remote-write 1.0 receiver.

Its body is no JSON (``application/x-protobuf``, snappy-compressed), which the
request guard (``common.guard``) refuses with 415 on every other route; so, as
``POST /api/v1/ingest`` does, the path is answered by a raw ASGI shim ahead of
the guard (``RemoteWriteShim``, a ``common.wire.WireShim``), with the guard's own
pieces: the body limit and its 413, request metrics, authentication and the
error envelope. The documented route is the OpenAPI entry and serves the same handler.

Answers, as the remote-write spec wants them: 204 once the request is stored in
the inbox (its samples are scored moments later, many requests at once:
``inbox``); 400 for a body that is not a WriteRequest (nothing written;
Prometheus drops it); 401 without a valid bearer; 413 over the size limit; 415
unless ``Content-Type: application/x-protobuf`` (and a ``Content-Encoding``, if
given, of ``snappy``); 503 with ``Retry-After`` while the database is
unreachable or too many of the account's samples wait (Prometheus retries).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.datastructures import Headers

from services.common.auth import Caller
from services.common.responses import errors
from services.common.wire import WireShim, unsupported_media_type

PATH = "/api/v1/write"
MEDIA_TYPE = "application/x-protobuf"

router = APIRouter(prefix="/api/v1")


def is_protobuf(content_type: bytes | None) -> bool:
    """``application/x-protobuf``, any case; parameters (``proto=...``) allowed."""
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == MEDIA_TYPE.encode()


def not_protobuf(content_type: bytes | None, encoding: str | None, *, close: bool) -> Response:
    given = None if content_type is None else content_type.decode("latin-1")[:100]
    if encoding is not None and is_protobuf(content_type):
        message = f"remote write bodies are snappy-compressed (Content-Encoding {encoding!r})"
    else:
        message = f"a remote-write body is sent with Content-Type: {MEDIA_TYPE}" + (
            " (no Content-Type given)" if given is None else f" (not {given!r})"
        )
    return unsupported_media_type(
        message, given=given, accepted=[MEDIA_TYPE], encodings=["snappy"], close=close
    )


def _bad_encoding(headers: Headers) -> str | None:
    """The Content-Encoding if it is given and is not snappy."""
    encoding = headers.get("content-encoding")
    if encoding is None or encoding.strip().lower() == "snappy":
        return None
    return encoding[:100]


async def handle_write(state: Any, account: str, body: bytes) -> Response:
    """Check and store the request (``inbox``): ``POST /api/v1/write`` after auth."""
    await state.write_inbox.accept(account, body)
    return Response(status_code=204)


_WRITE_BODY = {
    "requestBody": {
        "required": True,
        "description": (
            "a remote-write 1.0 WriteRequest (protobuf, Prometheus' prompb/remote.proto), "
            "snappy-compressed in the block format; Content-Encoding: snappy"
        ),
        "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "/write",
    tags=["ingest"],
    summary="Prometheus remote write 1.0: samples routed to remote_write detectors",
    description=(
        "What Prometheus' `remote_write` sends (authorization: the plugin secret with the "
        "X-Hasura-Source-Account-Id header, or a JWT). The request is checked and stored, "
        "and answered; its samples are then scored, in the order received, by "
        "every enabled detector of the account whose metric_source is "
        '`{"type": "remote_write", "match": "<series selector>"}` and whose selector '
        "matches the series' labels; its labels, without `__name__` (unless the detector's "
        "group_by names it), make the series through group_by. Samples no detector selects, "
        "staleness markers and NaN are skipped and counted "
        "(nsentry_remote_write_samples_total); points that would start series past their "
        "detector's max_series are refused, counted (nsentry_series_refused_total) and "
        "logged, every other point is stored. 204 once stored; 400 for a body that is not a "
        "snappy-compressed WriteRequest or a series this service cannot keep (over 33 "
        "labels, a bad label name, a value over 1,024 characters): nothing is written; "
        "503 while the database is unreachable or over ANOMALY_REMOTE_WRITE_BACKLOG samples "
        "of the account wait to be scored (retry)."
    ),
    status_code=204,
    response_class=Response,
    openapi_extra=_WRITE_BODY,
    responses={
        204: {"description": "stored; its samples are scored moments later"},
        **errors(
            400,
            413,
            415,
            503,
            d400="not a snappy-compressed WriteRequest, or a series this service cannot keep "
            "(nothing written)",
            d415=f"not Content-Type: {MEDIA_TYPE} (or a Content-Encoding other than snappy)",
            d503="the database is unreachable, or over ANOMALY_REMOTE_WRITE_BACKLOG samples of "
            "the account wait to be scored (`backlogged`): retry after Retry-After",
        ),
    },
)
async def write(request: Request, caller: Caller) -> Response:
    encoding = _bad_encoding(request.headers)
    media = request.headers.get("content-type")
    raw_media = None if media is None else media.encode("latin-1")
    if encoding is not None or not is_protobuf(raw_media):
        return not_protobuf(raw_media, encoding, close=False)
    return await handle_write(request.app.state, caller.account_id, await request.body())


class RemoteWriteShim(WireShim):
    """Pure ASGI: ``POST /api/v1/write`` answered by ``handle_write`` ahead of the guard
    (which takes JSON bodies only); anything else goes down the stack."""

    path = PATH

    def refuse(self, headers: Headers, media: bytes | None) -> Response | None:
        encoding = _bad_encoding(headers)
        if encoding is not None or not is_protobuf(media):
            return not_protobuf(media, encoding, close=True)
        return None

    async def handle(self, state: Any, account: str, headers: Headers, body: bytes) -> Response:
        return await handle_write(state, account, body)
