"""The compact state encoding round-trips every JSON state exactly."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.anomaly.ingest import statecodec

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
float_list = st.lists(
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)), min_size=0, max_size=40
)
state = st.recursive(
    st.one_of(leaf, float_list),
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=30,
)


@given(state)
def test_pack_unpack_round_trip(value: Any) -> None:
    packed = json.loads(json.dumps(statecodec.pack(value)))
    restored = statecodec.unpack(packed)
    assert json.dumps(restored) == json.dumps(value)


def test_long_float_lists_are_packed_and_smaller() -> None:
    value = {"tail": [i / 7 for i in range(1000)], "slots": [None, 1.5] * 100, "n": [1, 2] * 10}
    packed = statecodec.pack(value)
    assert set(packed["tail"]) == {"$f8"} and set(packed["slots"]) == {"$f8"}
    assert packed["n"] == value["n"]  # ints stay ints
    assert len(json.dumps(packed)) < len(json.dumps(value))
    assert statecodec.unpack(packed) == value


def test_a_dict_that_looks_like_a_packed_list_stays_a_dict() -> None:
    for value in ({"$f8": ""}, {"$f8": None}, {"$dict": {"a": 1}}, {"$x": [1.5] * 9}):
        packed = json.loads(json.dumps(statecodec.pack(value)))
        assert statecodec.unpack(packed) == value
