"""``server.proxy: haproxy`` as ``mmserve serve`` runs it: the session starts its own Ray with
Serve's HAProxy ingress switched on, HAProxy (not Serve's Python proxy) answers on the
session's port and forwards to the ingress replicas' own HTTP servers. Workflows, streaming,
large multipart photos, bad bytes and a full queue behave as behind Serve's proxy, and
stopping the session leaves no HAProxy process behind."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import psutil
import pytest
import ray
from benchmarks.photos import jpeg, synthetic_photo
from ray.serve._private.constants import (
    RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT,
    RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT,
)
from serve_support import RAY_INIT, ROOT, free_port, png_base64, write_config

from mmserve.client.retry import is_retryable_status
from mmserve.config import AppConfig
from mmserve.deploy.session import ServeSession

pytestmark = pytest.mark.serve

#: The ports Serve gives the ingress replicas' own HTTP servers behind HAProxy.
INGRESS_HTTP_PORTS = range(
    RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT, RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT + 1
)
RED = (220, 30, 30)


def _listeners(port: int) -> list[psutil.Process]:
    """The processes listening on ``port`` on this machine."""
    found = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            found.append(psutil.Process(conn.pid))
    return found


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeSession]:
    folder = tmp_path_factory.mktemp("haproxy")
    fake = {"backend": "fake", "source": "fake://", "cpus": 0.1}
    data = {
        "models": {
            "captioner": {**fake, "placement": "ingress", "batch": {"max_size": 1}},
            # every answer takes 1.5 s (asleep): a few concurrent ones fill the ingress
            "vqa": {**fake, "source": "fake://delay_ms=1500", "max_ongoing_requests": 16},
        },
        "store": {"kind": "memory"},
        "workflows": [str(ROOT / "workflows" / f"{name}.yaml") for name in ("caption", "answer")],
        "server": {
            "proxy": "haproxy",
            "ingress_replicas": 2,
            "max_ongoing_requests": 1,
            "max_queued_requests": 1,
        },
    }
    config = AppConfig.load(write_config(folder, data))
    # the switch reaches Serve only through a Ray this session starts
    assert not ray.is_initialized(), "an earlier module left its Ray running"
    # as `mmserve serve` does: the session starts (and stops) its own Ray, with the switch
    ray_options = {key: RAY_INIT[key] for key in ("include_dashboard", "object_store_memory")}
    serving = ServeSession(config, port=free_port(), ray_options=ray_options)
    serving.start()
    try:
        yield serving
    finally:
        serving.stop()


def test_haproxy_answers_on_the_port_and_forwards_to_the_ingress_replicas(
    session: ServeSession,
) -> None:
    names = {process.name() for process in _listeners(session.port)}
    assert names == {"haproxy"}, names
    health = httpx.get(f"{session.url}/v1/health", timeout=30).json()
    assert health["ready"] is True
    assert health["deployments"]["ingress"]["replicas"] == 2
    assert health["deployments"]["ingress"]["models"] == ["captioner"]
    # the ingress replicas answer HTTP themselves: two Serve replicas listen for HAProxy, on
    # ports of Serve's range for them (any replica also listens for gRPC, on another port)
    replicas = [
        process
        for process in psutil.process_iter(["cmdline"])
        if "ServeReplica:mmserve:ingress" in " ".join(process.info["cmdline"] or [])
    ]
    listening = {
        conn.pid
        for conn in psutil.net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN
        and conn.pid in {p.pid for p in replicas}
        and conn.laddr.port in INGRESS_HTTP_PORTS
    }
    assert len(listening) == 2, (replicas, listening)


def test_workflows_stream_and_errors_answer_as_behind_serves_proxy(session: ServeSession) -> None:
    with httpx.Client(base_url=session.url, timeout=60) as http:
        ran = http.post("/v1/workflows/caption/run", json={"inputs": {"image": png_base64(RED)}})
        assert ran.status_code == 200, ran.text
        assert ran.json()["outputs"]["caption"] == "a red image"
        body = {"inputs": {"image": png_base64(RED)}}
        sse = {"accept": "text/event-stream"}
        with http.stream("POST", "/v1/workflows/caption/run", json=body, headers=sse) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = stream.read().decode()
        assert "event: step_finished" in events and "event: result" in events
        missing = http.post("/v1/workflows/nope/run", json={"inputs": {}})
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "workflow_not_found"
        page = http.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_a_large_photo_and_bad_bytes_cross_haproxy(session: ServeSession) -> None:
    photo = jpeg(synthetic_photo(4000, 3000, seed=3))
    files = {"image": ("photo.jpg", photo, "image/jpeg")}
    ran = httpx.post(f"{session.url}/v1/workflows/caption/run", files=files, timeout=120)
    assert ran.status_code == 200, ran.text
    truncated = {"image": ("cut.jpg", photo[: len(photo) // 3], "image/jpeg")}
    bad = httpx.post(f"{session.url}/v1/workflows/caption/run", files=truncated, timeout=60)
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["code"] == "invalid_input"
    not_an_image = {"image": ("x.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")}
    bad = httpx.post(f"{session.url}/v1/workflows/caption/run", files=not_an_image, timeout=60)
    assert bad.status_code == 422, bad.text


def test_a_full_ingress_answers_503_and_the_client_may_retry(session: ServeSession) -> None:
    async def flood() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=session.url, timeout=60) as client:
            body = {"inputs": {"image": png_base64(RED), "question": "is it red?"}}
            return await asyncio.gather(
                *(client.post("/v1/workflows/answer/run", json=body) for _ in range(10))
            )

    responses = asyncio.run(flood())
    statuses = sorted(r.status_code for r in responses)
    # 2 replicas x (1 running + 1 queued): the rest are refused at once, nothing else fails
    assert set(statuses) == {200, 503}, statuses
    assert all(is_retryable_status(r) for r in responses if r.status_code == 503)
    ran = httpx.post(
        f"{session.url}/v1/workflows/caption/run",
        json={"inputs": {"image": png_base64(RED)}},
        timeout=60,
    )
    assert ran.status_code == 200


def test_stopping_the_session_stops_its_haproxy(session: ServeSession) -> None:
    """Last in the module: stops the module's session (the fixture's stop is then a no-op)."""
    haproxies = _listeners(session.port)
    assert [process.name() for process in haproxies] == ["haproxy"]
    session.stop()
    _gone, alive = psutil.wait_procs(haproxies, timeout=60)
    assert not alive, alive
    assert not _listeners(session.port)
