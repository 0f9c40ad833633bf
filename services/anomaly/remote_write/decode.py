"""The body of a remote-write 1.0 request: snappy block format around a protobuf
``WriteRequest`` (https://prometheus.io/docs/specs/prw/remote_write_spec/).

Decoding is the library's: ``cramjam`` for snappy, the generated ``lazy_pb2`` (the
``WriteRequest`` of ``remote.proto``, each series' labels left encoded) and
``types_pb2.Label`` for protobuf. Prometheus sends one ``TimeSeries`` per sample,
its labels repeated: a label set is decoded and checked once per encoding met
(``LabelMemo``, kept across requests by the receiver). Everything wrong with a body
is a ``BadRequest`` (400: Prometheus does not retry it) naming what, and nothing of
it is written:

* snappy that does not decompress, or a protobuf that does not parse;
* a series whose labels are not a label set this service can keep: more than
  ``MAX_SERIES_LABELS`` labels, a name that is not a Prometheus label name, a name
  given twice, a value over ``MAX_VALUE_LENGTH`` characters.

A body that would decompress to more than ``MAX_DECODED_BYTES`` is a 413, read
from the length snappy writes first (a small body cannot blow up in memory).
"""

from __future__ import annotations

from dataclasses import dataclass

import cramjam
from google.protobuf.message import DecodeError

from services.anomaly.remote_write.proto.lazy_pb2 import LazyWriteRequest
from services.anomaly.remote_write.proto.types_pb2 import Label
from services.anomaly.series import LABEL_NAME, MAX_LABELS, MAX_NAME_LENGTH, MAX_VALUE_LENGTH
from services.common.errors import BadRequest, PayloadTooLarge

# a series' own labels (at most MAX_LABELS, as everywhere in the API) plus __name__
MAX_SERIES_LABELS = MAX_LABELS + 1
MAX_DECODED_BYTES = 64 * 1024 * 1024
LABEL_SETS_KEPT = 50_000  # a LabelMemo starts over past this many label sets


def _decoded_length(body: bytes) -> int:
    """The uncompressed length a snappy block announces (its leading varint)."""
    length = 0
    for i, byte in enumerate(body[:5]):
        length |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return length
    raise BadRequest("the body is not snappy-compressed (block format): no length preamble")


def decompress(body: bytes) -> bytes:
    """The snappy block-format body, decompressed; 400 if it is not snappy."""
    if not body:
        raise BadRequest("empty body: expected a snappy-compressed WriteRequest")
    if _decoded_length(body) > MAX_DECODED_BYTES:
        raise PayloadTooLarge(
            f"the body decompresses to over {MAX_DECODED_BYTES} bytes",
            details={"limit": MAX_DECODED_BYTES},
        )
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise BadRequest(
            f"the body is not snappy-compressed (block format): {str(exc)[:200]}"
        ) from None


Labels = tuple[tuple[str, str], ...]


# a label set as sent (its Label messages, encoded) -> as decoded and checked
LabelMemo = dict[tuple[bytes, ...], "Labels"]


@dataclass(frozen=True)
class Decoded:
    """A ``WriteRequest`` (labels left encoded), each of its series' labels as
    ``(name, value)`` pairs in the order sent, and its samples in all."""

    request: LazyWriteRequest
    labels: list[Labels]
    samples: int


def check_labels(index: int, pairs: Labels) -> None:
    """400 unless the labels of series ``index`` are a label set this service keeps."""
    if len(pairs) > MAX_SERIES_LABELS:
        raise BadRequest(
            f"timeseries {index}: {len(pairs)} labels, at most {MAX_SERIES_LABELS} "
            "(__name__ included)",
            details={"timeseries": index, "labels": len(pairs), "limit": MAX_SERIES_LABELS},
        )
    if len({name for name, _ in pairs}) != len(pairs):
        raise BadRequest(
            f"timeseries {index}: a label name given twice", details={"timeseries": index}
        )
    for name, value in pairs:
        if len(name) > MAX_NAME_LENGTH or not LABEL_NAME.match(name):
            raise BadRequest(
                f"timeseries {index}: {name[:140]!r} is not a label name",
                details={"timeseries": index, "label": name[:140]},
            )
        if len(value) > MAX_VALUE_LENGTH:
            raise BadRequest(
                f"timeseries {index}: label {name} over {MAX_VALUE_LENGTH} characters",
                details={"timeseries": index, "label": name},
            )


def _labels(index: int, encoded: tuple[bytes, ...]) -> Labels:
    """A series' label set from its encoded Label messages; 400 unless it is one this
    service keeps."""
    try:
        pairs = tuple((label.name, label.value) for label in map(Label.FromString, encoded))
    except DecodeError as exc:
        raise BadRequest(
            f"the body is not a remote-write WriteRequest: timeseries {index}: {exc}"
        ) from None
    check_labels(index, pairs)
    return pairs


def decode(body: bytes, memo: LabelMemo | None = None) -> Decoded:
    """The ``WriteRequest`` of a remote-write body and its series' labels; 400 (or 413)
    if it is not one. ``memo``: label sets decoded before (by this or earlier calls),
    filled as new ones are met."""
    raw = decompress(body)
    request = LazyWriteRequest()
    try:
        request.ParseFromString(raw)
    except DecodeError as exc:
        raise BadRequest(f"the body is not a remote-write WriteRequest: {exc}") from None
    if memo is None:
        memo = {}
    elif len(memo) > LABEL_SETS_KEPT:
        memo.clear()
    labels: list[Labels] = []
    samples = 0
    for index, series in enumerate(request.timeseries):
        encoded = tuple(series.labels)
        pairs = memo.get(encoded)
        if pairs is None:
            pairs = memo[encoded] = _labels(index, encoded)
        labels.append(pairs)
        samples += len(series.samples)
    return Decoded(request, labels, samples)
