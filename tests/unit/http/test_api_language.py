"""The workflow language over HTTP (in-process app, fake models): the cache bypass header,
a for_each workflow and a conditional one with its skipped step."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_support import b64, build_api, image_bytes
from fastapi.testclient import TestClient

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_api()) as test_client:
        yield test_client


def _classify(client: TestClient, **headers: str) -> dict:
    inputs = {"image": b64(image_bytes()), "question": "what is it?", "min_score": 0}
    response = client.post(
        "/v1/workflows/classify_then_answer/run", json={"inputs": inputs}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_cache_header_bypasses_the_step_cache(client: TestClient) -> None:
    first = _classify(client)
    again = _classify(client)
    assert again["trace"][0]["cached"] is True
    assert again["outputs"] == first["outputs"]
    fresh = _classify(client, **{"x-mmserve-cache": "bypass"})
    assert fresh["trace"][0]["cached"] is False and fresh["outputs"] == first["outputs"]
    inputs = {"image": b64(image_bytes()), "question": "q"}
    bad = client.post(
        "/v1/workflows/classify_then_answer/run",
        json={"inputs": inputs},
        headers={"x-mmserve-cache": "never"},
    )
    assert bad.status_code == 400
    assert "x-mmserve-cache" in bad.json()["error"]["message"]


def test_a_skipped_step_gives_null_outputs_and_a_traced_reason(client: TestClient) -> None:
    inputs = {"image": b64(image_bytes()), "question": "what is it?", "min_score": 1}
    response = client.post("/v1/workflows/classify_then_answer/run", json={"inputs": inputs})
    body = response.json()
    assert response.status_code == 200 and body["outputs"]["answer"] is None
    skipped = body["trace"][1]
    assert skipped["status"] == "skipped"
    assert skipped["error"] == "when: ${classify.score} >= ${inputs.min_score} is false"


def test_the_openapi_document_declares_the_cache_header(client: TestClient) -> None:
    run = client.get("/openapi.json").json()["paths"]["/v1/workflows/{name}/run"]["post"]
    header = next(p for p in run["parameters"] if p["name"] == "x-mmserve-cache")
    assert header["schema"]["enum"] == ["use", "bypass"]
