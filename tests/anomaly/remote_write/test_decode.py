"""Remote-write bodies decoded with their label sets read once per encoding: the same
labels as the full WriteRequest parse, and a bad label set refused every time."""

from __future__ import annotations

import cramjam
import pytest

from services.anomaly.remote_write.decode import decode
from services.anomaly.remote_write.proto.lazy_pb2 import LazyWriteRequest
from services.anomaly.remote_write.proto.remote_pb2 import WriteRequest
from services.common.errors import BadRequest
from tests.anomaly.remote_write.support import body


def test_labels_and_samples_match_the_full_parse_with_or_without_a_memo() -> None:
    series = [
        ({"__name__": "up", "instance": f"i{i % 3}", "job": "x"}, [(1000 * k, float(k))])
        for k in range(4)
        for i in range(5)
    ]
    content = body(series)
    full = WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(content)))
    expected = [tuple((lb.name, lb.value) for lb in ts.labels) for ts in full.timeseries]
    memo: dict[tuple[bytes, ...], tuple[tuple[str, str], ...]] = {}
    for decoded in (decode(content), decode(content, memo), decode(content, memo)):
        assert decoded.labels == expected
        assert decoded.samples == 20
        assert [s.samples[0].value for s in decoded.request.timeseries] == [
            s.samples[0].value for s in full.timeseries
        ]
    assert len(memo) == 3  # one entry per distinct label set


def test_a_label_set_that_does_not_decode_or_check_is_refused_every_time() -> None:
    broken = LazyWriteRequest()
    ts = broken.timeseries.add()
    ts.labels.append(b"\x0a\x02\xff\xfe")  # a Label whose name is not UTF-8
    ts.samples.add(value=1.0, timestamp=1000)
    not_utf8 = bytes(cramjam.snappy.compress_raw(broken.SerializeToString()))
    bad_name = body([({"__name__": "up", "bad-name": "x"}, [(1000, 1.0)])])
    memo: dict[tuple[bytes, ...], tuple[tuple[str, str], ...]] = {}
    for content, says in ((not_utf8, "timeseries 0"), (bad_name, "is not a label name")):
        for _ in range(2):
            with pytest.raises(BadRequest) as refused:
                decode(content, memo)
            assert says in str(refused.value)
    assert memo == {}
