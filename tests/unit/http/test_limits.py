"""The API's guards in process: API key, body and input limits, bad bytes, content types,
multipart runs, the deadline header, and the collection endpoints (fake models, no Ray)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from api_support import AUTH, KEY, b64, build_api, image_bytes
from api_support import error_message as _error
from api_support import run_workflow as _run
from fastapi.testclient import TestClient

pytestmark = pytest.mark.unit

LIMITS = {"max_body_bytes": 64 * 1024, "max_image_pixels": 10_000, "max_text_chars": 500}


@pytest.fixture(scope="module")
def client(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch_module.setenv("MMSERVE_UNIT_KEY", KEY)
    app = build_api({"api_key_env": "MMSERVE_UNIT_KEY", "limits": {**LIMITS, "max_items": 4}})
    with TestClient(app, headers=AUTH) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_api_key_is_required_everywhere_but_health(client: TestClient) -> None:
    assert client.get("/v1/health", headers={"authorization": ""}).status_code == 200
    for path in ("/v1/workflows", "/v1/collections", "/v1/plugins", "/openapi.json"):
        none = client.get(path, headers={"authorization": ""})
        assert "API key" in _error(none, 401, "unauthorized")
        assert none.headers["www-authenticate"].startswith("Bearer")
        _error(client.get(path, headers={"authorization": "Bearer wrong"}), 401)
        _error(client.get(path, headers={"authorization": KEY}), 401)
        assert client.get(path).status_code == 200


def test_bodies_over_the_limit_are_413_before_reading(client: TestClient) -> None:
    big = b"x" * (LIMITS["max_body_bytes"] + 1)
    sized = client.post(
        "/v1/workflows/caption/run", content=big, headers={"content-type": "application/json"}
    )
    assert "limit is 65536 bytes" in _error(sized, 413, "body_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(40):
            yield b"y" * 4096

    streamed = client.post(
        "/v1/workflows/caption/run", content=chunks(), headers={"content-type": "application/json"}
    )
    _error(streamed, 413, "body_too_large")


def test_invalid_json_is_400_and_wrong_content_types_are_415(client: TestClient) -> None:
    for path in ("/v1/workflows/caption/run", "/v1/collections/notes/search"):
        broken = client.post(
            path, content=b'{"inputs": ', headers={"content-type": "application/json"}
        )
        assert "not valid JSON" in _error(broken, 400, "invalid_request")
        text = client.post(path, content=b"hello", headers={"content-type": "text/plain"})
        assert "text/plain" in _error(text, 415, "unsupported_media_type")


def test_multipart_runs_take_files_and_text_parts(client: TestClient) -> None:
    red = image_bytes()
    body = client.post("/v1/workflows/caption/run", files={"image": ("red.png", red, "image/png")})
    assert body.status_code == 200, body.text
    assert body.json()["outputs"]["caption"] == "a red image"
    labels = json.dumps(["red", "blue"])
    classify = client.post(
        "/v1/workflows/classify/run",
        files={"image": ("red.png", red, "image/png")},
        data={"labels": labels},
    )
    assert classify.status_code == 200, classify.text
    fake = client.post(
        "/v1/workflows/caption/run",
        files={"image": ("x.png", b"\x89PNG random bytes", "image/png")},
    )
    assert "'image'" in _error(fake, 422, "invalid_input")


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        (image_bytes(fmt="JPEG")[:120], 422, "corrupt or truncated"),
        (image_bytes()[:60], 422, "'image'"),
        (b"", 422, "empty"),
        (b"GIF89a but not really", 422, "not an image"),
        (image_bytes(size=(200, 200)), 413, "200x200"),
    ],
    ids=["truncated-jpeg", "truncated-png", "empty", "not-an-image", "too-many-pixels"],
)
def test_bad_image_bytes_are_refused_naming_the_input(
    client: TestClient, data: bytes, status: int, says: str
) -> None:
    message = _error(_run(client, "caption", image=b64(data)), status)
    assert "'image'" in message and says in message


@pytest.mark.parametrize(
    ("mode", "fmt"), [("RGB", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG")]
)
def test_odd_but_valid_images_are_accepted(client: TestClient, mode: str, fmt: str) -> None:
    response = _run(client, "caption", image=b64(image_bytes(mode, (1, 1), fmt)))
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]


def test_urls_are_never_fetched(client: TestClient) -> None:
    message = _error(_run(client, "caption", image="http://169.254.169.254/latest"), 422)
    assert "does not fetch URLs" in message


def test_texts_lists_and_fields_are_checked_naming_them(client: TestClient) -> None:
    image = b64(image_bytes())
    long = _error(_run(client, "answer", image=image, question="x" * 501), 413, "input_too_large")
    assert "'question'" in long and "501 characters" in long
    assert "NUL" in _error(_run(client, "answer", image=image, question="what\x00?"), 422)
    surrogate = client.post(
        "/v1/workflows/answer/run",
        content=b'{"inputs": {"image": "%s", "question": "is it \\ud800 red?"}}' % image.encode(),
        headers={"content-type": "application/json"},
    )
    assert "surrogate" in _error(surrogate, 422)
    odd = _run(client, "answer", image=image, question="is it red? \u202e\u0301 \U0001f600 \u4e2d")
    assert odd.status_code == 200  # type: ignore[attr-defined]
    many = _error(_run(client, "classify", image=image, labels=list("abcde")), 413)
    assert "'labels'" in many and "5 items" in many
    assert "'question'" in _error(_run(client, "answer", image=image), 422)
    assert "'colour'" in _error(_run(client, "answer", image=image, question="q", colour=1), 422)
    assert "'question'" in _error(_run(client, "answer", image=image, question=3), 422)
    extra = client.post("/v1/workflows/caption/run", json={"inputs": {}, "stream": True})
    assert "stream" in _error(extra, 422, "invalid_request")
    assert "nope" in _error(_run(client, "nope"), 404, "workflow_not_found")


def test_deadline_header(client: TestClient) -> None:
    image = b64(image_bytes())
    bad = client.post(
        "/v1/workflows/caption/run",
        json={"inputs": {"image": image}},
        headers={"x-mmserve-timeout-s": "soon"},
    )
    assert "x-mmserve-timeout-s" in _error(bad, 400, "invalid_request")
    late = client.post(
        "/v1/workflows/caption/run",
        json={"inputs": {"image": image}},
        headers={"x-mmserve-timeout-s": "1e-9"},
    )
    assert "step 'caption'" in _error(late, 504, "deadline_exceeded")
    assert [e["status"] for e in late.json()["error"]["trace"]] == ["cancelled"]


def test_collections_add_list_search(client: TestClient) -> None:
    items = [{"text": "a red car", "id": "car", "metadata": {"n": 1}}, {"text": "a blue boat"}]
    added = client.post("/v1/collections/notes/items", json={"items": items})
    assert added.status_code == 200, added.text
    assert added.json()["ids"][0] == "car" and added.json()["count"] == 2
    images = [{"image": b64(image_bytes())}, {"image": b64(image_bytes("CMYK", fmt="JPEG"))}]
    assert client.post("/v1/collections/pics/items", json={"items": images}).status_code == 200
    listing = {c["name"]: c for c in client.get("/v1/collections").json()["collections"]}
    assert listing["notes"]["modality"] == "text" and listing["pics"]["count"] == 2
    found = client.post("/v1/collections/notes/search", json={"text": "red", "top_k": 1})
    assert found.json()["matches"][0]["id"] == "car"
    by_image = client.post("/v1/collections/notes/search", json={"image": b64(image_bytes())})
    assert by_image.json()["matches"][0]["payload"]["metadata"] == {"n": 1}
    assert client.get("/v1/collections/notes").json()["count"] == 2

    _error(client.get("/v1/collections/missing"), 404, "collection_not_found")
    _error(client.post("/v1/collections/missing/search", json={"text": "x"}), 404)
    _error(client.post("/v1/collections/notes/search", json={"text": "x", "image": "y"}), 422)
    _error(client.post("/v1/collections/notes/items", json={"items": images[:1]}), 422)
    twice = [{"text": "a", "id": "same"}, {"text": "b", "id": "same"}]
    _error(client.post("/v1/collections/notes/items", json={"items": twice}), 422)
    five = [{"text": str(n)} for n in range(5)]
    _error(client.post("/v1/collections/notes/items", json={"items": five}), 413)
    bad = [{"image": b64(b"not an image")}]
    assert "items[0].image" in _error(
        client.post("/v1/collections/p2/items", json={"items": bad}), 422
    )
    _error(client.post("/v1/collections/bad name/search", json={"text": "x"}), 422)


def test_a_config_naming_an_unset_key_variable_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mmserve.errors import ConfigError

    monkeypatch.delenv("MMSERVE_UNSET_KEY", raising=False)
    with pytest.raises(ConfigError, match="MMSERVE_UNSET_KEY"):
        build_api({"api_key_env": "MMSERVE_UNSET_KEY"})
