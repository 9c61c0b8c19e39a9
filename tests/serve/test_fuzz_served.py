"""A fuzz run of the served HTTP surface (the shared app of the weight-free ``fake`` models,
shared_fake.py).

Nested and oversized JSON at several depths and sizes in every input of every shipped
workflow and every field of the collection routes, random bytes as images (JSON and
multipart), random field names. The property of every case: never a 5xx, every error in the
error shape, and a valid request to the same route succeeds right after (after the bad values
of one field, for the nested and oversized ones).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_support import png_base64
from shared_fake import MAX_ITEMS, MAX_TEXT, FakeApp

pytestmark = pytest.mark.serve

RED = png_base64((220, 30, 30), (24, 24))
#: A valid run of every shipped workflow (collections filled by the fixture).
VALID: dict[str, dict[str, Any]] = {
    "answer": {"image": RED, "question": "what colour is it?"},
    "caption": {"image": RED},
    "caption_then_retrieve": {"image": RED, "top_k": 2},
    "classify": {"image": RED, "labels": ["red", "blue"]},
    "describe": {"image": RED},
    "retrieve_then_answer": {"question": "what colour is it?"},
    "search_images": {"text": "red", "top_k": 2},
    "answer_each": {"question": "what colour is it?", "top_k": 2},
    "caption_matches": {"text": "red", "top_k": 2},
    "classify_then_answer": {"image": RED, "question": "what is it?", "min_score": 0},
}
IMAGE_INPUTS = {
    "answer",
    "caption",
    "caption_then_retrieve",
    "classify",
    "classify_then_answer",
    "describe",
}
#: A valid body of every collection route that takes one.
COLLECTION_BODIES: dict[str, dict[str, Any]] = {
    "/v1/collections/captions/items": {"items": [{"text": "a red sun", "metadata": {"n": 1}}]},
    "/v1/collections/captions/search": {"text": "red", "top_k": 2},
    "/v1/collections/images/items": {"items": [{"image": RED, "id": "red"}]},
    "/v1/collections/images/search": {"image": RED, "top_k": 1},
}
DEPTHS = (2, 33, 3_000)


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


def _deep_text(depth: int) -> str:
    """JSON text nested ``depth`` levels (too deep for json.dumps to write)."""
    return "[" * depth + "1" + "]" * depth


@pytest.fixture(scope="module")
def http(fake_app: FakeApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_app.url, timeout=60) as client:
        for path, body in COLLECTION_BODIES.items():
            if path.endswith("/items"):
                assert client.post(path, json=body).status_code == 200
        yield client


def _check(response: httpx.Response, case: str) -> None:
    assert response.status_code < 500, f"{case}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str), case
        assert error["request_id"], case


def _still_serves(http: httpx.Client, path: str) -> None:
    if path.startswith("/v1/workflows/"):
        name = path.split("/")[3]
        body: dict[str, Any] = {"inputs": VALID.get(name, VALID["caption"])}
        path = f"/v1/workflows/{name if name in VALID else 'caption'}/run"
    else:  # a search of the same collection (valid, and it writes nothing)
        path = path.replace("/items", "/search")
        body = COLLECTION_BODIES[path]
    after = http.post(path, json=body)
    assert after.status_code == 200, f"a valid request after the case: {after.text[:300]}"


def _bad(http: httpx.Client, path: str, content: bytes | str, case: str) -> None:
    response = http.post(path, content=content, headers={"content-type": "application/json"})
    _check(response, case)


def _case(http: httpx.Client, path: str, content: bytes | str, case: str) -> None:
    _bad(http, path, content, case)
    _still_serves(http, path)


#: (label, JSON text) of values nested at several depths, and oversized ones.
BAD_VALUES = [(f"arrays {d}", _deep_text(d)) for d in DEPTHS] + [
    ("objects 33", json.dumps(_nested(33))),
    ("objects 600", json.dumps(_nested(600))),
    ("long text", json.dumps("x" * (MAX_TEXT + 1))),
    ("many items", json.dumps(["x"] * (MAX_ITEMS + 1))),
    ("many values", json.dumps([[1] * 10] * 12_000)),
    ("huge integer", "9" * 5_000),
    ("nan", "NaN"),
]


def _with(body: dict[str, Any], where: list[str], text: str) -> str:
    """``body`` as JSON text with the value at key path ``where`` replaced by raw ``text``."""
    marker = "__FUZZ_MARKER__"
    body = json.loads(json.dumps(body))
    target: Any = body
    for key in where[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[where[-1]] = marker
    return json.dumps(body).replace(json.dumps(marker), text)


def test_nested_and_oversized_json_in_every_workflow_input(http: httpx.Client) -> None:
    for workflow, inputs in VALID.items():
        path = f"/v1/workflows/{workflow}/run"
        for name in [*inputs, "unexpected"]:
            for label, text in BAD_VALUES:
                body = _with({"inputs": inputs}, ["inputs", name], text)
                _bad(http, path, body, f"{workflow}.{name}: {label}")
            _still_serves(http, path)  # after every bad value of this input


def test_nested_and_oversized_json_in_every_collection_field(http: httpx.Client) -> None:
    fields: dict[str, list[list[str]]] = {
        "/v1/collections/captions/items": [
            ["items", "0", "text"],
            ["items", "0", "id"],
            ["items", "0", "metadata"],
            ["items"],
            ["model"],
        ],
        "/v1/collections/captions/search": [["text"], ["top_k"], ["model"], ["include_images"]],
        "/v1/collections/images/items": [["items", "0", "image"], ["items", "0", "metadata"]],
        "/v1/collections/images/search": [["image"], ["extra"]],
    }
    for path, wheres in fields.items():
        for where in wheres:
            for label, text in BAD_VALUES:
                body = _with(COLLECTION_BODIES[path], where, text)
                _bad(http, path, body, f"{path} {'.'.join(where)}: {label}")
            _still_serves(http, path)  # after every bad value of this field
    for path in COLLECTION_BODIES:
        _case(http, path, _deep_text(5_000), f"{path}: a bare nested body")


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.binary(min_size=0, max_size=2_048), workflow=st.sampled_from(sorted(IMAGE_INPUTS)))
def test_random_bytes_as_images(http: httpx.Client, data: bytes, workflow: str) -> None:
    image = base64.b64encode(data).decode()
    path = f"/v1/workflows/{workflow}/run"
    _case(http, path, json.dumps({"inputs": {**VALID[workflow], "image": image}}), "json image")
    upload = http.post(path, files={"image": ("x.png", data, "image/png")})
    _check(upload, "multipart image")
    items = json.dumps({"items": [{"image": image}]})
    _case(http, "/v1/collections/images/items", items, "collection image")
    _case(http, "/v1/collections/images/search", json.dumps({"image": image}), "search image")


_NAMES = st.text(min_size=0, max_size=40)
_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
_VALUES: st.SearchStrategy[Any] = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_NAMES, inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(
    route=st.sampled_from(
        [f"/v1/workflows/{w}/run" for w in sorted(VALID)] + sorted(COLLECTION_BODIES)
    ),
    extra=st.dictionaries(_NAMES, _VALUES, min_size=1, max_size=3),
    inside=st.booleans(),
)
def test_random_field_names_and_values(
    http: httpx.Client, route: str, extra: dict[str, Any], inside: bool
) -> None:
    if route.startswith("/v1/workflows/"):
        inputs = dict(VALID[route.split("/")[3]])
        body: dict[str, Any] = {"inputs": {**inputs, **extra}} if inside else {"inputs": inputs}
        if not inside:
            body.update(extra)
    else:
        body = {**COLLECTION_BODIES[route], **extra}
    _case(http, route, json.dumps(body, allow_nan=True), f"{route} + {sorted(extra)}")


def test_a_multipart_json_field_nested_deep(http: httpx.Client) -> None:
    red = base64.b64decode(RED)
    for depth in DEPTHS:
        response = http.post(
            "/v1/workflows/classify/run",
            files={"image": ("red.png", red, "image/png")},
            data={"labels": _deep_text(depth)},
        )
        _check(response, f"multipart labels nested {depth}")
        _still_serves(http, "/v1/workflows/classify/run")


@FUZZ
@given(name=st.text(min_size=1, max_size=300), body=_VALUES)
def test_random_collection_names_in_paths(http: httpx.Client, name: str, body: Any) -> None:
    quoted = quote(name, safe="")
    _check(http.get(f"/v1/collections/{quoted}"), f"GET collection {name!r}")
    for route in ("items", "search"):
        path = f"/v1/collections/{quoted}/{route}"
        # NaN and infinities as JSON writes them (httpx's json= refuses them): the door's to judge
        text = json.dumps(body, allow_nan=True)
        sent = http.post(path, content=text, headers={"content-type": "application/json"})
        _check(sent, f"POST {route} of {name!r}")
    _still_serves(http, "/v1/collections/captions/search")
