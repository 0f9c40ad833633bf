"""Remote-write bodies built with the generated protobuf classes, snappy-compressed."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from datetime import datetime

import cramjam
import httpx

from services.anomaly.remote_write.proto.remote_pb2 import WriteRequest

HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]

Series = tuple[Mapping[str, str], Iterable[tuple[datetime | int, float]]]


def ms(at: datetime | int) -> int:
    return at if isinstance(at, int) else int(at.timestamp() * 1000)


def write_request(series: Iterable[Series]) -> WriteRequest:
    request = WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name, value in labels.items():
            ts.labels.add(name=name, value=value)
        for at, value in samples:
            ts.samples.add(value=value, timestamp=ms(at))
    return request


def body(series: Iterable[Series]) -> bytes:
    raw = write_request(series).SerializeToString()
    return bytes(cramjam.snappy.compress_raw(raw))


async def scored(client: httpx.AsyncClient, account: str | None = None) -> None:
    """Until the app behind an ASGI test client has scored every remote-write request it
    accepted (of ``account``, or of any): a 204 means stored in the inbox, and the
    drain scores it moments later."""
    app = client._transport.app  # type: ignore[attr-defined]  # httpx.ASGITransport's
    await app.state.write_inbox.settled(account)
