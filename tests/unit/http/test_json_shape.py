"""The door's JSON shape check: the byte-count shortcut never lets through what the scan
would refuse, and a base64 photo takes the shortcut."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmserve.errors import InputTooLargeError
from mmserve.http.middleware.json_shape import JsonLimits, check_json_shape, surely_within

pytestmark = pytest.mark.unit

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, max_depth=st.integers(1, 6), max_nodes=st.integers(1, 60))
def test_the_shortcut_passes_only_what_the_scan_passes(
    value: Any, max_depth: int, max_nodes: int
) -> None:
    raw = json.dumps(value).encode()
    limits = JsonLimits(max_depth=max_depth, max_nodes=max_nodes)
    if surely_within(raw, limits):
        check_json_shape(raw, limits)  # must not raise


def test_a_base64_photo_takes_the_shortcut_and_deep_json_does_not() -> None:
    limits = JsonLimits(max_depth=32, max_nodes=10_000)
    photo = base64.b64encode(bytes(range(256)) * 4000).decode()  # ~1.4 MB of base64
    body = json.dumps({"inputs": {"image": photo, "labels": ["a cat", "a dog"]}}).encode()
    assert surely_within(body, limits)
    deep = ("[" * 40 + "]" * 40).encode()
    assert not surely_within(deep, limits)
    with pytest.raises(InputTooLargeError, match="max_json_depth"):
        check_json_shape(deep, limits)
    many = json.dumps(list(range(20_000))).encode()
    assert not surely_within(many, limits)
    with pytest.raises(InputTooLargeError, match="max_json_nodes"):
        check_json_shape(many, limits)
