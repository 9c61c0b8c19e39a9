"""Collections over HTTP in process (fake models, memory store): stored images come back as
the files that were stored, image work runs off the event loop, wrong collections are 4xx,
a collection is dropped with its items."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from api_support import AUTH, b64, build_api
from fastapi.testclient import TestClient
from PIL import Image

import mmserve.workflow.steps.index as index_step
import mmserve.workflow.steps.retrieve as retrieve_step

pytestmark = pytest.mark.unit


def _jpeg(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_api(), headers=AUTH) as test_client:
        photos = [_jpeg(n) for n in range(3)]
        added = test_client.post(
            "/v1/collections/photos/items", json={"items": [{"image": b64(p)} for p in photos]}
        )
        assert added.status_code == 200, added.text
        notes = {"items": [{"text": "a red car"}, {"text": "a blue boat"}]}
        assert test_client.post("/v1/collections/notes/items", json=notes).status_code == 200
        test_client.photos = photos  # type: ignore[attr-defined]
        yield test_client


def _run(client: TestClient, workflow: str, **inputs: Any) -> Any:
    return client.post(f"/v1/workflows/{workflow}/run", json={"inputs": inputs})


def test_answers_carry_the_stored_files_not_re_encoded_images(client: TestClient) -> None:
    photos = sorted(map(b64, client.photos))  # type: ignore[attr-defined]
    found = _run(client, "search_images", text="a photo", top_k=3, collection="photos")
    assert found.status_code == 200, found.text
    assert sorted(m["payload"]["image"] for m in found.json()["outputs"]["matches"]) == photos
    answered = _run(client, "retrieve_then_answer", question="what is it?", collection="photos")
    assert answered.status_code == 200, answered.text
    assert answered.json()["outputs"]["image"] in photos  # the JPEG as stored, not a PNG
    searched = client.post("/v1/collections/photos/search", json={"text": "x", "top_k": 3})
    assert sorted(m["payload"]["image"] for m in searched.json()["matches"]) == photos


def _spy(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[str]:
    """Record the thread each call of ``module.name`` runs on (the real function runs)."""
    threads: list[str] = []
    real: Callable[..., Any] = getattr(module, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return threads


def test_image_decoding_and_hashing_run_on_the_image_pool(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = _spy(monkeypatch, retrieve_step, "decode_image")
    hashed = _spy(monkeypatch, index_step, "image_content_id")
    added = client.post("/v1/collections/pool/items", json={"items": [{"image": b64(_jpeg(9))}]})
    assert added.status_code == 200, added.text
    found = _run(client, "search_images", text="a photo", top_k=1, collection="pool")
    assert found.status_code == 200, found.text
    assert hashed and decoded
    assert all(name.startswith("mmserve-image") for name in hashed + decoded), hashed + decoded


def test_include_images_false_answers_without_image_bytes(client: TestClient) -> None:
    searched = client.post(
        "/v1/collections/photos/search", json={"text": "x", "top_k": 3, "include_images": False}
    )
    assert searched.status_code == 200, searched.text
    assert [m["payload"]["image"] for m in searched.json()["matches"]] == [None, None, None]


def test_retrieve_then_answer_on_a_text_collection_is_a_422_naming_it(client: TestClient) -> None:
    answered = _run(client, "retrieve_then_answer", question="what is it?", collection="notes")
    assert answered.status_code == 422, answered.text
    message = answered.json()["error"]["message"]
    assert "'notes'" in message and "text items" in message


def test_an_unknown_collection_is_a_404(client: TestClient) -> None:
    answered = _run(client, "retrieve_then_answer", question="what is it?", collection="nope")
    assert answered.status_code == 404, answered.text
    assert "'nope'" in answered.json()["error"]["message"]


def test_an_unknown_collection_is_found_before_earlier_steps_run(client: TestClient) -> None:
    run = _run(client, "caption_then_retrieve", image=b64(_jpeg(5)), collection="nope")
    assert run.status_code == 404, run.text
    assert "'nope'" in run.json()["error"]["message"]
    # the caption (a model call) never ran for a search that could not happen
    assert [s["status"] for s in run.json()["error"]["trace"]] == ["skipped", "skipped"]


def test_a_match_has_one_shape_from_the_step_and_from_collection_search(
    client: TestClient,
) -> None:
    """`{id, score, payload: {text, image, metadata}}`: the retrieve step's matches (in a run's
    outputs) and POST /v1/collections/{name}/search give the same records (issue 17)."""
    from_step = _run(client, "search_images", text="a photo", top_k=3, collection="photos")
    searched = client.post("/v1/collections/photos/search", json={"text": "a photo", "top_k": 3})
    assert searched.status_code == 200, searched.text
    step_matches = from_step.json()["outputs"]["matches"]
    assert searched.json()["matches"] == step_matches
    assert set(step_matches[0]) == {"id", "score", "payload"}
    assert set(step_matches[0]["payload"]) == {"text", "image", "metadata"}


def test_delete_drops_a_collection_with_its_items(client: TestClient) -> None:
    added = client.post(
        "/v1/collections/doomed/items", json={"items": [{"text": "a"}, {"text": "b"}]}
    )
    assert added.status_code == 200, added.text
    dropped = client.delete("/v1/collections/doomed")
    assert dropped.status_code == 200, dropped.text
    assert dropped.json() == {
        "collection": "doomed",
        "count": 2,
        "request_id": dropped.headers["x-request-id"],
    }
    assert client.get("/v1/collections/doomed").status_code == 404
    names = {c["name"] for c in client.get("/v1/collections").json()["collections"]}
    assert "doomed" not in names and {"photos", "notes"} <= names
    again = client.delete("/v1/collections/doomed")
    assert again.status_code == 404 and again.json()["error"]["code"] == "collection_not_found"
    assert client.delete("/v1/collections/bad name!").status_code in (404, 422)
