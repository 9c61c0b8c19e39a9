"""The HTTP API over an in-process engine (fake models, memory store; no Ray)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest
from api_support import ROOT, build_api
from fastapi.testclient import TestClient
from PIL import Image

from mmserve.http.api import REQUEST_ID_HEADER

pytestmark = pytest.mark.unit

WORKFLOWS = ("caption", "answer", "classify")


def png_base64(colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    workflows = [str(ROOT / "workflows" / f"{name}.yaml") for name in WORKFLOWS]
    with TestClient(build_api(workflows=workflows)) as test_client:
        yield test_client


def test_health_and_workflow_listing(client: TestClient) -> None:
    assert client.get("/v1/health").json() == {
        "status": "ok",
        "ready": True,
        "deployments": {},
        "message": "",
    }
    listing = client.get("/v1/workflows").json()["workflows"]
    by_name = {w["name"]: w for w in listing}
    assert set(WORKFLOWS) == set(by_name)
    assert by_name["caption"]["inputs"]["properties"]["image"]["contentEncoding"] == "base64"


def test_run_returns_outputs_trace_and_the_callers_request_id(client: TestClient) -> None:
    response = client.post(
        "/v1/workflows/caption/run",
        json={"inputs": {"image": png_base64((220, 30, 30))}},
        headers={REQUEST_ID_HEADER: "req-42"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outputs"]["caption"] == "a red image"
    assert body["request_id"] == "req-42" == response.headers[REQUEST_ID_HEADER]
    (entry,) = body["trace"]
    assert entry["step"] == "caption" and entry["status"] == "ok" and entry["batch_size"] == 1


def test_unknown_workflow_is_a_404_error_body(client: TestClient) -> None:
    response = client.post("/v1/workflows/nope/run", json={"inputs": {}})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "workflow_not_found"
    assert "caption" in error["message"]  # lists the known ones
    assert error["request_id"] == response.headers[REQUEST_ID_HEADER]


def test_bad_inputs_are_422_naming_the_problem(client: TestClient) -> None:
    missing = client.post("/v1/workflows/answer/run", json={"inputs": {"question": "why?"}})
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "invalid_input"
    assert "image" in missing.json()["error"]["message"]
    not_image = client.post(
        "/v1/workflows/caption/run", json={"inputs": {"image": base64.b64encode(b"hi").decode()}}
    )
    assert not_image.status_code == 422
    extra = client.post("/v1/workflows/caption/run", json={"inputs": {}, "extra": 1})
    assert extra.status_code == 422
    assert extra.json()["error"]["code"] == "invalid_request"


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/v2/anything")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_plugins_lists_steps_with_schemas_and_models(client: TestClient) -> None:
    body = client.get("/v1/plugins").json()
    records = {(p["kind"], p["name"]): p for p in body["plugins"]}
    assert "image" in records[("step", "caption")]["inputs"]["properties"]
    assert "vqa" in records[("model", "fake")]["roles"]
