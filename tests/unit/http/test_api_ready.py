"""``GET /v1/ready``: 503 with the error shape and Retry-After until every deployment is
ready, then 200; like ``/v1/health`` it needs no API key (probes carry none)."""

from __future__ import annotations

import pytest
from api_support import KEY, build_api
from fastapi.testclient import TestClient

from mmserve.http.schemas.workflows import DeploymentHealth, HealthResponse

pytestmark = pytest.mark.unit

STARTING = HealthResponse(
    status="starting",
    ready=False,
    deployments={
        "captioner": DeploymentHealth(status="UPDATING", ready=False, replicas=0),
        "ingress": DeploymentHealth(status="HEALTHY", ready=True, replicas=1),
    },
)


def _client(states: list[HealthResponse], monkeypatch: pytest.MonkeyPatch) -> TestClient:
    async def health() -> HealthResponse:
        return states[0]

    monkeypatch.setenv("MMSERVE_UNIT_KEY", KEY)
    return TestClient(build_api({"api_key_env": "MMSERVE_UNIT_KEY"}, health=health))


def test_ready_is_503_until_every_deployment_is_ready_then_200(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    states = [STARTING]
    client = _client(states, monkeypatch)
    starting = client.get("/v1/ready")  # no API key: probes carry none
    assert starting.status_code == 503
    assert starting.headers["retry-after"] == "1"
    error = starting.json()["error"]
    assert error["code"] == "not_ready"
    assert error["request_id"] == starting.headers["x-request-id"]
    assert "captioner updating (0 replicas)" in error["message"]
    assert "ingress" not in error["message"]
    # liveness is not readiness: /v1/health answers 200 all along
    assert client.get("/v1/health").json()["ready"] is False

    states[0] = HealthResponse(status="ok", ready=True)
    ready = client.get("/v1/ready")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True


def test_ready_before_the_app_exists_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client([HealthResponse(status="starting", ready=False)], monkeypatch)
    answer = client.get("/v1/ready")
    assert answer.status_code == 503
    assert "not deployed yet" in answer.json()["error"]["message"]
