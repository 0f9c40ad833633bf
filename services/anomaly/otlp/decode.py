"""The body of an OTLP/HTTP metrics request, and the encoding of its answer
(https://opentelemetry.io/docs/specs/otlp/#otlphttp).

Two encodings, told by the Content-Type: binary protobuf
(``application/x-protobuf``) and OTLP/JSON (``application/json``: the protobuf
JSON mapping, lowerCamelCase field names, 64-bit integers as numbers or strings,
enums as integers; unknown fields are ignored, as the spec wants). Either may be
gzip-compressed (``Content-Encoding: gzip``, as exporters send them). Decoding is
the library's: the generated messages of ``opentelemetry-proto`` with protobuf's
parser and its ``json_format``, ``zlib`` for gzip. Everything wrong with a body
is a ``BadRequest`` (400: an exporter does not retry it) naming what, found before
anything is written. A body that decompresses to more than ``MAX_DECODED_BYTES``
is a 413 (decompression stops there: a small body cannot blow up in memory).

The answer (an ``ExportMetricsServiceResponse``) is encoded as the request was.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from services.common.errors import BadRequest, PayloadTooLarge

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)
ENCODINGS = ("gzip", "identity")
MAX_DECODED_BYTES = 64 * 1024 * 1024


def media_of(content_type: bytes | str | None) -> str | None:
    """``PROTOBUF`` or ``JSON`` for a Content-Type that says one (any case, parameters
    such as ``charset`` allowed); None for any other."""
    if content_type is None:
        return None
    raw = content_type.encode("latin-1") if isinstance(content_type, str) else content_type
    media = raw.split(b";", 1)[0].strip().lower().decode("latin-1")
    return media if media in MEDIA_TYPES else None


def encoding_of(content_encoding: str | None) -> str | None:
    """``gzip`` or ``identity`` (also for no Content-Encoding); None for any other."""
    if content_encoding is None:
        return "identity"
    encoding = content_encoding.strip().lower()
    return encoding if encoding in ENCODINGS else None


def gunzip(body: bytes, limit: int = MAX_DECODED_BYTES) -> bytes:
    """A gzip body decompressed (every member of it); 400 if it is not gzip, 413 past
    ``limit`` bytes."""
    out: list[bytes] = []
    size = 0
    rest = body
    while rest:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(rest, limit - size + 1)
        except zlib.error as exc:
            raise BadRequest(f"the body is not gzip-compressed: {exc}") from None
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"the body decompresses to over {limit} bytes", details={"limit": limit}
            )
        if not inflater.eof:
            raise BadRequest("the gzip body is truncated")
        out.append(chunk)
        rest = inflater.unused_data
    if not out:
        raise BadRequest("empty body with Content-Encoding: gzip")
    return b"".join(out)


def decode(body: bytes, media: str, encoding: str) -> ExportMetricsServiceRequest:
    """The ``ExportMetricsServiceRequest`` of a body; 400 (or 413) if it is not one."""
    raw = gunzip(body) if encoding == "gzip" else body
    request = ExportMetricsServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(raw)
        except DecodeError as exc:
            raise BadRequest(
                f"the body is not a protobuf ExportMetricsServiceRequest: {exc}"
            ) from None
        return request
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise BadRequest("an OTLP/JSON body is an object (an ExportMetricsServiceRequest)")
    try:
        check_objects(data, request.DESCRIPTOR, "ExportMetricsServiceRequest")
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise BadRequest(
            f"the body is not an OTLP/JSON ExportMetricsServiceRequest: {str(exc)[:300]}"
        ) from None
    return request


def check_objects(data: dict[str, Any], descriptor: Descriptor, where: str) -> None:
    """ValueError unless every message in ``data`` is a JSON object (or null). With
    ``ignore_unknown_fields``, ``json_format`` reads a string where a message belongs
    as a message of unknown fields (its characters); OTLP/JSON has objects there."""
    fields = {f.json_name: f for f in descriptor.fields} | {f.name: f for f in descriptor.fields}
    for key, value in data.items():
        field = fields.get(key)
        if field is None or field.message_type is None or value is None:
            continue
        items = value if isinstance(value, list) and field.is_repeated else [value]
        for i, item in enumerate(items):
            at = f"{where}.{key}" + (f"[{i}]" if items is value else "")
            if item is None and items is not value:
                continue
            if not isinstance(item, dict):
                raise ValueError(f"{at}: a message, written as a JSON object")
            check_objects(item, field.message_type, at)


def encode(message: Message, media: str) -> bytes:
    """A message in the request's encoding (OTLP/JSON: lowerCamelCase, no defaults)."""
    if media == PROTOBUF:
        return message.SerializeToString()
    return json.dumps(
        json_format.MessageToDict(message), separators=(",", ":"), ensure_ascii=False
    ).encode()
