"""What the door refuses before any work: image shapes, the request's pixel budget, JSON
nesting and size (bodies, multipart fields, collection metadata), in process (no Ray)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import numpy as np
import pytest
from api_support import b64, build_api, image_bytes
from api_support import error_message as _error
from api_support import run_workflow as _run
from fastapi.testclient import TestClient
from PIL import Image

pytestmark = pytest.mark.unit

LIMITS = {
    "max_image_pixels": 200_000,
    "max_image_side": 1_000,
    "max_request_pixels": 250_000,
    "max_json_depth": 16,
    "max_json_nodes": 2_000,
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_api({"limits": LIMITS})) as test_client:
        yield test_client


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def _header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header says ``width`` x ``height`` but whose pixels are cut off."""
    return image_bytes(size=(width, height))[:80]


def test_a_thin_strip_is_refused_by_its_aspect_ratio_with_the_default_limits() -> None:
    with TestClient(build_api()) as default:
        thin = image_bytes(size=(8000, 2))
        assert len(thin) < 1000
        message = _error(_run(default, "caption", image=b64(thin)), 413, "input_too_large")
        assert "8000x2" in message and "server.limits.max_image_aspect_ratio" in message
        square = _run(default, "caption", image=b64(image_bytes(size=(200, 20))))
        assert square.status_code == 200, square.text  # type: ignore[attr-defined]


def test_the_longest_side_is_capped(client: TestClient) -> None:
    message = _error(_run(client, "caption", image=b64(image_bytes(size=(1100, 100)))), 413)
    assert "1100x100" in message and "server.limits.max_image_side" in message


def test_the_request_pixel_budget_is_checked_from_headers_before_decoding(
    client: TestClient,
) -> None:
    # each image fits alone; together they pass the budget, and the truncated one is never
    # decoded (that would be a 422): the budget is read from the headers first
    items = [
        {"image": b64(image_bytes(size=(400, 300)))},
        {"image": b64(image_bytes(size=(300, 400)))},
        {"image": b64(_header_only_png(400, 300))},
    ]
    message = _error(client.post("/v1/collections/pics/items", json={"items": items}), 413)
    assert "3 images have 360000 pixels together" in message
    assert "server.limits.max_request_pixels" in message
    fits = client.post("/v1/collections/pics/items", json={"items": items[:2]})
    assert fits.status_code == 200, fits.text


def test_one_image_over_the_request_budget_is_refused(client: TestClient) -> None:
    with TestClient(build_api({"limits": {**LIMITS, "max_request_pixels": 10_000}})) as small:
        message = _error(_run(small, "caption", image=b64(image_bytes(size=(200, 100)))), 413)
        assert "20000 pixels together" in message and "max_request_pixels" in message
        upload = ("big.png", image_bytes(size=(200, 100)), "image/png")
        multipart = small.post("/v1/workflows/caption/run", files={"image": upload})
        assert "max_request_pixels" in _error(multipart, 413)
        search = small.post(
            "/v1/collections/pics/search", json={"image": b64(image_bytes(size=(200, 100)))}
        )
        assert "max_request_pixels" in _error(search, 413)


@pytest.mark.parametrize("depth", [17, 900, 5_000])
def test_deep_json_in_a_run_is_413_naming_the_limit(client: TestClient, depth: int) -> None:
    body = '{"inputs": {"image": "' + b64(image_bytes()) + '", "labels": ' + _nested(depth) + "}}"
    response = client.post(
        "/v1/workflows/classify/run", content=body, headers={"content-type": "application/json"}
    )
    message = _error(response, 413, "input_too_large")
    assert "deeper than 16 levels" in message and "server.limits.max_json_depth" in message


def test_json_at_the_depth_limit_passes_the_door(client: TestClient) -> None:
    labels = json.loads(_nested(14))  # the body and "inputs" are two levels more: 16
    message = _error(_run(client, "classify", image=b64(image_bytes()), labels=labels), 422)
    assert "labels" in message


def test_too_many_json_values_are_413(client: TestClient) -> None:
    response = _run(client, "classify", image=b64(image_bytes()), labels=["x"] * 2_100)
    assert "server.limits.max_json_nodes" in _error(response, 413, "input_too_large")


def test_deep_collection_metadata_is_refused_before_it_reaches_the_store(
    client: TestClient,
) -> None:
    body = '{"items": [{"text": "a", "metadata": {"m": ' + _nested(500) + "}}]}"
    response = client.post(
        "/v1/collections/notes/items", content=body, headers={"content-type": "application/json"}
    )
    assert "server.limits.max_json_depth" in _error(response, 413)
    search = client.post(
        "/v1/collections/notes/search",
        content='{"text": ' + _nested(3_000) + "}",
        headers={"content-type": "application/json"},
    )
    _error(search, 413)
    assert client.get("/v1/collections").status_code == 200


def test_multipart_json_fields_are_bounded_too(client: TestClient) -> None:
    red = ("red.png", image_bytes(), "image/png")
    deep = client.post(
        "/v1/workflows/classify/run", files={"image": red}, data={"labels": _nested(5_000)}
    )
    message = _error(deep, 413, "input_too_large")
    assert "'labels'" in message and "server.limits.max_json_depth" in message
    many = client.post(
        "/v1/workflows/classify/run",
        files={"image": red},
        data={"labels": json.dumps(["x"] * 2_100)},
    )
    assert "server.limits.max_json_nodes" in _error(many, 413)


def test_a_16_bit_big_endian_tiff_is_decoded(client: TestClient) -> None:
    values = np.array([[0, 1000], [30000, 65535]], dtype=">u2")
    buffer = io.BytesIO()
    Image.frombytes("I;16B", (2, 2), values.tobytes()).save(buffer, format="TIFF")
    assert Image.open(io.BytesIO(buffer.getvalue())).mode == "I;16B"
    response = _run(client, "caption", image=b64(buffer.getvalue()))
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
