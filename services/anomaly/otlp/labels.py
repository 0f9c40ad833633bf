"""PURE: an OTLP attribute value (``AnyValue``) as label text.

Labels are strings; attribute values need not be. A string stays itself; a bool is
``true``/``false``; an int its decimal digits; a double Python's shortest repr
(``0.5``, ``1e+20``, ``nan``); bytes their base64; an array or a key-value list
compact JSON of its values (``["a",1]``, ``{"k":"v"}``); an empty value ``""``
(which, as any empty label, is no label).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def plain(value: AnyValue) -> Any:
    """The value as plain Python (for arrays and lists of key-values)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "double_value" and value.double_value != value.double_value:
        return "nan"  # JSON has no NaN
    return getattr(value, kind)


def text(value: AnyValue) -> str:
    """The value as a label's text."""
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return json.dumps(plain(value), separators=(",", ":"), ensure_ascii=False, allow_nan=True)
